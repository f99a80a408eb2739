"""Key planting: a team's key carrying another key's packet as a subkey (issue 18).

GnuPG finds a key by any of its fingerprints, subkeys included. A key that carries
another team's key packet as a subkey (an authentication-only subkey needs no
back-signature; a planted signing subkey without one still shadows the real key) makes
the real key's import fail ("doesn't match our copy") and its signatures unverifiable.
The attack keys are built here with GnuPG's expert mode (`addkey`, "Existing key", the
victim key's keygrip, at the victim key's creation time so that the fingerprint is the
same); the workshop keyring holds both secret keys, a shortcut an attacker does not
need, so the back-signature gpg then makes for a signing subkey is taken out again
packet by packet (`strip_back_signatures`): what an attacker without the victim's
secret key could send. Everything an admin does goes through the CLI; reports go through
`ingest` and `process` with real keys.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli
from support import TeamClient, config_toml

from gateway.app import App
from keys.gpg import GnuPG


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


def gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args]
    return subprocess.run(cmd, input=data, check=True, capture_output=True).stdout


def client(app: App, tmp_path: Path, handle: str, *, an_hour_ago: bool = False) -> TeamClient:
    """A team's own keyring and key (not registered), knowing the gateway key."""
    extra = []
    if an_hour_ago:  # older than the victim's key: the planted binding may not predate it
        extra = [
            "--faked-system-time",
            time.strftime("%Y%m%dT%H%M%S!", time.gmtime(time.time() - 3600)),
        ]
    maker = GnuPG(tmp_path / f"team-{handle}", extra_options=extra)
    email = f"cert@{handle}.example"
    fpr = maker.generate_key(f"CERT {handle}", email)
    team_gpg = GnuPG(tmp_path / f"team-{handle}")
    team_gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    return TeamClient(handle, email, team_gpg, fpr, app.identity.fingerprint)


def register(ch: Cli, team: TeamClient, tmp_path: Path, *, code: int = 0) -> str:
    ch("teams", "add", team.handle, "--name", f"CERT {team.handle}", "--email", team.email)
    return import_key(ch, team, team.gpg.export_public(team.fingerprint).encode(), tmp_path, code)


def import_key(ch: Cli, team: TeamClient, data: bytes, tmp_path: Path, code: int = 0) -> str:
    path = tmp_path / f"{team.handle}-{time.monotonic_ns()}.asc"
    path.write_bytes(data)
    result = ch("keys", "import", team.handle, str(path), code=code)
    return result.stdout + result.stderr


def plant(tmp_path: Path, attacker: TeamClient, victim: TeamClient, usage: str) -> bytes:
    """The attacker's key with the victim's primary key packet added as a subkey for
    `usage` ("auth": authentication only; "sign": signing, without a back-signature)."""
    workshop = tmp_path / "workshop"
    GnuPG(workshop)
    for team in (attacker, victim):
        gpg(workshop, "--import", data=gpg(team.gpg.home, "--export-secret-keys", team.fingerprint))
    listing = gpg(workshop, "--with-colons", "--with-keygrip", "-K", victim.fingerprint).decode()
    keygrip = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("grp"))
    victim_key = victim.gpg.details(victim.fingerprint)
    assert victim_key is not None and victim_key.created is not None
    toggles = "S\nA\n" if usage == "auth" else ""  # an ed25519 key starts as "Sign"
    commands = f"addkey\n13\n{keygrip}\n{toggles}Q\n0\nsave\n".encode()
    born = f"{int(victim_key.created.timestamp())}!"  # the same packet, the same fingerprint
    edit = ["--faked-system-time", born, "--ignore-time-conflict", "--expert", "--command-fd", "0"]
    gpg(workshop, *edit, "--edit-key", attacker.fingerprint, data=commands)
    exported = gpg(workshop, "--export", attacker.fingerprint)
    planted = GnuPG(tmp_path / "inspect")
    planted.import_keys(exported)
    carried = planted.details(attacker.fingerprint)
    assert carried is not None and victim.fingerprint in [s.fingerprint for s in carried.subkeys]
    return strip_back_signatures(exported) if usage == "sign" else exported


# --- packets: just enough OpenPGP framing to take a subpacket out ----------------------


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, body) of each packet of a binary (non-armored) key export."""
    i = 0
    while i < len(data):
        ctb = data[i]
        if ctb & 0x40:  # new format, as gpg writes keys
            tag, first = ctb & 0x3F, data[i + 1]
            if first < 192:
                head, length = 2, first
            elif first < 224:
                head, length = 3, ((first - 192) << 8) + data[i + 2] + 192
            else:
                head, length = 6, int.from_bytes(data[i + 2 : i + 6], "big")
        else:
            size = {0: 1, 1: 2, 2: 4}[ctb & 3]
            tag, head = (ctb >> 2) & 0x0F, 1 + size
            length = int.from_bytes(data[i + 1 : i + head], "big")
        yield tag, data[i + head : i + head + length]
        i += head + length


def packet(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        length = b"\xff" + n.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body


def _without_embedded_signature(area: bytes) -> bytes:
    kept, i = b"", 0
    while i < len(area):
        first = area[i]
        if first < 192:
            head, length = 1, first
        elif first < 255:
            head, length = 2, ((first - 192) << 8) + area[i + 1] + 192
        else:
            head, length = 5, int.from_bytes(area[i + 1 : i + 5], "big")
        if area[i + head] & 0x7F != 32:  # 32: embedded signature (the back-signature)
            kept += area[i : i + head + length]
        i += head + length
    return kept


def strip_back_signatures(data: bytes) -> bytes:
    """Remove the back-signature from every subkey binding signature (v4, class 0x18).

    gpg writes it in the unhashed area, so the binding signature itself stays valid.
    """
    out = b""
    for tag, body in packets(data):
        if tag == 2 and body[0] == 4 and body[1] == 0x18:
            hashed = int.from_bytes(body[4:6], "big")
            start = 6 + hashed
            unhashed_len = int.from_bytes(body[start : start + 2], "big")
            unhashed = body[start + 2 : start + 2 + unhashed_len]
            kept = _without_embedded_signature(unhashed)
            rest = body[start + 2 + unhashed_len :]
            body = body[:start] + len(kept).to_bytes(2, "big") + kept + rest
        out += packet(tag, body)
    return out


def accepted(ch: Cli, team: TeamClient) -> None:
    """The team's report goes in and is stored as the team's."""
    ch("ingest", input=team.submit())
    ch("process", "--once")
    newest = ch.json("messages", "list")[-1]
    assert (newest["state"], newest["reason"], newest["team"]) == ("accepted", None, team.handle)


# --- the attack, with the victim registered first --------------------------------------


@pytest.mark.parametrize("usage", ["auth", "sign"])
def test_a_key_carrying_a_registered_teams_key_packet_is_refused(
    ch: Cli, app: App, tmp_path: Path, usage: str
) -> None:
    mallory = client(app, tmp_path, "mallory", an_hour_ago=True)
    victim = client(app, tmp_path, "victim")
    register(ch, mallory, tmp_path)
    register(ch, victim, tmp_path)
    attack = plant(tmp_path, mallory, victim, usage)

    refused = import_key(ch, mallory, attack, tmp_path, code=1)

    assert "planted" in refused and "bound to team 'victim'" in refused
    assert f"its subkey {victim.fingerprint}" in refused and "Nothing was imported" in refused
    in_keyring = app.gpg.details(mallory.fingerprint)
    assert in_keyring is not None
    assert victim.fingerprint not in [s.fingerprint for s in in_keyring.subkeys]
    # The victim's later import and its reports still work; so do the attacker's own.
    again = import_key(ch, victim, victim.gpg.export_public(victim.fingerprint).encode(), tmp_path)
    assert f"refreshed {victim.fingerprint} to victim" in again
    accepted(ch, victim)
    accepted(ch, mallory)


# --- the attack, with the attacker first: found at the victim's import, undone by remove --


@pytest.mark.parametrize("usage", ["auth", "sign"])
def test_a_planted_key_is_named_at_the_victims_import_and_keys_remove_undoes_it(
    ch: Cli, app: App, tmp_path: Path, usage: str
) -> None:
    mallory = client(app, tmp_path, "mallory", an_hour_ago=True)
    victim = client(app, tmp_path, "victim")
    ch("teams", "add", "mallory", "--name", "Mallory", "--email", mallory.email)
    # The gateway has never seen the victim's key: nothing yet to recognise it by.
    import_key(ch, mallory, plant(tmp_path, mallory, victim, usage), tmp_path)

    refused = register(ch, victim, tmp_path, code=1)
    assert f"key {victim.fingerprint} cannot be imported: its primary key" in refused
    assert f"part of key {mallory.fingerprint} (bound to team 'mallory')" in refused
    assert f"`keys remove {mallory.fingerprint}`" in refused
    ch("keys", "revoke", mallory.fingerprint, "--reason", "planted a key")
    victim_key = victim.gpg.export_public(victim.fingerprint).encode()
    assert "planted" in import_key(ch, victim, victim_key, tmp_path, code=1)  # revoke: no help

    removed = ch("keys", "remove", mallory.fingerprint).stdout
    assert "bound to team mallory" in removed and "the gateway keyring" in removed
    assert app.gpg.details(mallory.fingerprint) is None
    assert [k["fingerprint"] for k in ch.json("keys", "list")] == []
    assert f"bound {victim.fingerprint} to victim" in import_key(ch, victim, victim_key, tmp_path)
    accepted(ch, victim)
    [entry] = [e for e in ch.json("audit") if e["action"] == "keys remove"]
    assert entry["subject"] == mallory.fingerprint and "from team mallory" in entry["details"]


def test_the_gateways_own_key_is_never_a_teams(ch: Cli, app: App, tmp_path: Path) -> None:
    ch("teams", "add", "alpha", "--name", "Alpha", "--email", "cert@alpha.example")
    gateway_key = tmp_path / "gateway.asc"
    gateway_key.write_text(ch("gateway-key").stdout)
    refused = ch("keys", "import", "alpha", str(gateway_key), code=1).stderr
    assert "the gateway's own key" in refused
    assert ch.json("keys", "list") == []
    fpr = app.identity.fingerprint
    assert "never deletes it" in ch("keys", "remove", fpr, code=1).stderr
    assert app.gpg.details(fpr, secret=True) is not None


def test_keys_remove_refuses_what_it_must_not_delete(ch: Cli, app: App, tmp_path: Path) -> None:
    alpha = client(app, tmp_path, "alpha")
    register(ch, alpha, tmp_path)
    details = app.gpg.details(alpha.fingerprint)
    assert details is not None
    [sub] = details.subkeys
    subkey = ch("keys", "remove", sub.fingerprint, code=1).stderr
    assert f"is a subkey of key {alpha.fingerprint}" in subkey
    assert "no key" in ch("keys", "remove", "0" * 40, code=1).stderr
    chair = GnuPG(tmp_path / "chair")
    chair_fpr = chair.generate_key("Chair", "chair@ch.example")
    (tmp_path / "chair.asc").write_text(chair.export_public(chair_fpr))
    ch("coordinators", "add", "chair@ch.example", "--key", str(tmp_path / "chair.asc"))
    assert "coordinators remove" in ch("keys", "remove", chair_fpr, code=1).stderr
    assert app.gpg.details(alpha.fingerprint) is not None  # nothing was deleted
