"""Reading TI's directory export: typed entries from TI's layout, and one clear error,
naming the file, the entry and the problem, for every kind of bad input."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import pytest
from directory_support import TI_LAYOUT, spaced, ti_team

from contract.errors import DirectoryError, RegistryError
from keys.directory import check_link_name, link_key, read_directory

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
CAP = 1 << 20


def read(data: bytes | str, cap: int = CAP) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    return read_directory(io.BytesIO(raw), source="teams.json", max_bytes=cap)


def refused(data: bytes | str | list[Any], cap: int = CAP) -> str:
    text = json.dumps(data) if isinstance(data, list) else data
    with pytest.raises(DirectoryError) as caught:
        read(text, cap)
    message = str(caught.value)
    assert message.startswith("teams.json") and "\n" not in message
    return message


def test_the_field_layout_of_tis_export() -> None:
    directory = read(TI_LAYOUT)
    energy, university, consultancy = directory.entries
    assert energy.short_name == "ES-CERT"
    assert energy.official_name == "Energy Sector CERT of Testland"
    assert (energy.country, energy.classification, energy.status) == ("TL", "c", "certified")
    assert (energy.classification_name, energy.since) == ("Certified", date(2021, 9, 30))
    assert energy.contact == "cert@grid.example"  # the address whose usage is "contact"
    [key] = energy.keys
    assert key.fingerprint == "11112222333344445555666677778888" + "9999AAAA"
    assert key.expires == date(2030, 1, 31)
    assert university.status == "accredited" and university.since == date(2002, 6, 28)
    assert [k.fingerprint for k in university.keys] == ["ABCD" * 10, "BCDE" * 10]
    assert (consultancy.status, consultancy.keys) == ("listed", ())
    assert consultancy.contact == "CSIRT@Consultancy.example"
    assert directory.find("uni   net cert") is university  # case and spacing ignored
    assert directory.find("CERT.at") is None


def test_each_classification_and_the_older_usage_word() -> None:
    teams = [ti_team(n, c, fingerprints=[FPR] if c == "a" else []) for n, c in
             [("ONE", "l"), ("TWO", "a"), ("THREE", "c")]]  # fmt: skip
    teams[0]["emails"] = [{"address": "x@one.example", "usage": "contact"}]
    teams[2]["classification"].pop("since")
    one, two, three = read(json.dumps(teams)).entries
    assert [e.status for e in (one, two, three)] == ["listed", "accredited", "certified"]
    assert one.contact == "x@one.example"
    assert two.fingerprints == {FPR} and three.since is None


def test_a_fingerprint_in_lower_case_or_without_spaces_is_the_same() -> None:
    teams = [ti_team("ONE", "a"), ti_team("TWO", "c")]
    teams[0]["pgp_keys"] = [{"fingerprint": spaced(FPR).lower(), "expires": None}]
    teams[1]["pgp_keys"] = [{"fingerprint": FPR, "expires": "2030-02-01T00:00:00Z"}]
    one, two = read(json.dumps(teams)).entries
    assert one.fingerprints == two.fingerprints == {FPR}
    assert one.keys[0].expires is None and two.keys[0].expires == date(2030, 2, 1)


def _with(**changes: Any) -> list[Any]:
    team = ti_team("GOOD", "a", fingerprints=[FPR])
    bad = ti_team("BAD", "c")
    for key, value in changes.items():
        if value is None:
            bad.pop(key)
        else:
            bad[key] = value
    return [team, bad]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "team: CERT-X\n",
            "teams.json is not valid JSON (lexical error: invalid string in json text) "
            "before its first entry",
        ),
        ('[{"short_name": "A",', "is not valid JSON (parse error: premature EOF) before"),
        ("", "teams.json is empty"),
        ('{"teams": []}', "teams.json holds an object, not a JSON array of teams"),
        ('"teams"', "holds a single string, not a JSON array"),
        ("[]", "teams.json lists no teams"),
        ([ti_team("A", "a"), 7], "teams.json: entry 2 is not a JSON object"),
        (_with(short_name=None), "entry 2 has no usable short_name"),
        (_with(short_name="  "), "entry 2 has no usable short_name"),
        (_with(short_name=12), "entry 2 has no usable short_name"),
        (_with(classification=None), "entry 2 ('BAD') has no classification code"),
        (_with(classification={"name": "Certified"}), "entry 2 ('BAD') has no classification"),
        (
            _with(classification={"code": "x", "name": "Gold"}),
            "entry 2 ('BAD'): unknown classification code 'x' (TI uses l, a or c",
        ),
        (
            _with(classification={"code": "A"}),
            "entry 2 ('BAD'): unknown classification code 'A'",
        ),
        (
            _with(classification={"code": "a", "since": "28.03.2003"}),
            "entry 2 ('BAD'): classification.since '28.03.2003' is not a date (YYYY-MM-DD)",
        ),
        (
            _with(pgp_keys=[{"fingerprint": FPR[:-1], "expires": None}]),
            f"entry 2 ('BAD'): pgp_keys[0]: fingerprint '{FPR[:-1]}' is not 40 hex digits",
        ),
        (
            _with(pgp_keys=[{"fingerprint": "G" + FPR[1:]}]),
            "pgp_keys[0]: fingerprint 'G123",
        ),
        (_with(pgp_keys=[{"expires": "2030-01-01"}]), "pgp_keys[0]: fingerprint None"),
        (
            _with(pgp_keys=[{"fingerprint": FPR, "expires": "soon"}]),
            "pgp_keys[0].expires 'soon' is not a date",
        ),
        (_with(pgp_keys={"fingerprint": FPR}), "entry 2 ('BAD'): pgp_keys is not a JSON array"),
        (_with(emails=[{"usage": ["contact"]}]), "entry 2 ('BAD'): emails[0] has no address"),
        (
            [ti_team("CERT.at", "c"), ti_team("X", "l"), ti_team("cert.AT", "a")],
            "entries 1 and 3 have the same short_name 'cert.AT'",
        ),
        (
            [ti_team("ACN IBE CSIRT", "l"), ti_team("ACN  IBE CSIRT", "a")],
            "entries 1 and 2 have the same short_name",
        ),
    ],
)
def test_bad_input_gets_one_clear_error(data: str | list[Any], expected: str) -> None:
    assert expected in refused(data)


def test_trailing_garbage_is_not_json() -> None:
    text = json.dumps([ti_team("A", "a")]) + "\n<html>"
    assert "not valid JSON (parse error: trailing garbage) after entry 1" in refused(text)


def test_more_than_the_cap_is_refused_while_streaming() -> None:
    teams = [ti_team(f"T{n}", "a", fingerprints=[FPR]) for n in range(400)]
    text = json.dumps(teams).encode()
    assert len(read(text, cap=len(text)).entries) == 400  # the cap itself is allowed

    class Endless(io.RawIOBase):
        """A stream that never ends: the cap must stop the reading, not the stream."""

        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = (b'[{"short_name": "' if not self.served else b"") + b"x" * 4000
            size = min(len(buffer), len(chunk))
            buffer[:size] = chunk[:size]
            self.served += size
            return size

    endless = Endless()
    with pytest.raises(DirectoryError, match=r"larger than 65536 bytes \(\[registry\] ti_max"):
        read_directory(io.BufferedReader(endless), source="teams.json", max_bytes=65536)
    assert endless.served < 65536 + 70000  # it stopped close to the cap


def test_control_characters_in_names_are_refused_and_dropped_elsewhere() -> None:
    team = ti_team("OK", "a")
    team["official_name"] = "OK\x1b[31m CERT"
    [entry] = read(json.dumps([team])).entries
    assert entry.official_name == "OK[31m CERT"
    assert "has no usable short_name" in refused([ti_team("BAD\x1b[2J", "a")])


def test_link_names_are_compared_without_case_and_spacing() -> None:
    assert link_key("  ACN  IBE\tCSIRT ") == link_key("acn ibe csirt")
    assert check_link_name("  ACN  IBE CSIRT ") == "ACN IBE CSIRT"
    for bad in ("", "   ", "x" * 101, "bad\x00name"):
        with pytest.raises(RegistryError, match="TI short name"):
            check_link_name(bad)
