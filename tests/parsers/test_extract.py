"""Finding the reports in a MIME entity: which parts are read, encodings, bounds."""

from __future__ import annotations

import email
import json
import quopri
from datetime import date
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.drafts import MAX_INPUT_BYTES
from parsers.extract import NO_REPORT, BodyProblem, parse_signed_content, quoted_printable
from parsers.model import ParseOutcome, ReportError, Type2Report
from parsers.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
TODAY = date(2026, 11, 15)

TYPE2 = "Report: type2\nPeriod: 2026-10\nMalicious Code / Virus: 12\nOther: 1\n"
CSV = "report,period,key,value\ntype2,2026-09,Fraud / Phishing,3\n"
JSON = {"report": "type2", "period": "2026-08", "counts": {"Availability / DDoS": 4}}


def parse(entity: Message) -> ParseOutcome:
    return parse_signed_content(entity, TODAY, TAXONOMY)


def sources(outcome: ParseOutcome) -> list[str]:
    assert outcome.ok, outcome.errors
    return [r.source for r in outcome.reports]


def mixed(*parts: Message) -> MIMEMultipart:
    message = MIMEMultipart()
    for part in parts:
        message.attach(part)
    return message


def named(part: Message, filename: str | tuple[str, str, str]) -> Message:
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def csv_part(text: str = CSV, filename: str = "stats.csv") -> Message:
    return named(MIMEText(text, "csv", "utf-8"), filename)


def json_part(document: object = JSON, filename: str = "stats.json") -> Message:
    data = json.dumps(document).encode()
    return named(MIMEApplication(data, "json"), filename)


def raw(text: str) -> Message:
    return email.message_from_string(text)


def test_plain_body() -> None:
    outcome = parse(MIMEText(TYPE2, "plain", "utf-8"))
    assert sources(outcome) == ["body"]
    report = outcome.reports[0]
    assert isinstance(report, Type2Report)
    assert report.counts == {("malicious-code", "virus"): 12, ("other", None): 1}


def test_entity_as_built_by_the_inline_unwrapper() -> None:
    entity = Message()
    entity.set_payload(TYPE2 + "Team: CERT-Ö\n", charset="utf-8")
    assert parse(entity).reports[0].claimed_team == "CERT-Ö"


def test_note_csv_and_json_attachments() -> None:
    note = MIMEText("Hello, our figures are attached.\n", "plain", "utf-8")
    outcome = parse(mixed(note, csv_part(), json_part(), MIMEText("<p>hi</p>", "html")))
    assert sources(outcome) == ["stats.csv", "stats.json"]
    assert [r.period for r in outcome.reports] == ["2026-09", "2026-08"]


def test_round_trip_through_bytes() -> None:
    message = mixed(MIMEText(TYPE2, "plain", "utf-8"), csv_part(), json_part())
    assert sources(parse(email.message_from_bytes(message.as_bytes()))) == [
        "body",
        "stats.csv",
        "stats.json",
    ]


@pytest.mark.parametrize(
    ("filename", "document"), [("stats.CSV", CSV.encode()), ("x.json", json.dumps(JSON).encode())]
)
def test_octet_stream_by_extension(filename: str, document: bytes) -> None:
    part = named(MIMEApplication(document), filename)
    assert sources(parse(mixed(part))) == [filename]


def test_text_plain_attachment_named_csv_is_csv() -> None:
    part = named(MIMEText(CSV, "plain", "utf-8"), "figures.csv")
    assert sources(parse(mixed(part))) == ["figures.csv"]


def test_other_attachments_are_ignored() -> None:
    outcome = parse(mixed(
        MIMEText(TYPE2, "plain", "utf-8"),
        named(MIMEApplication(b"Report: type2\n"), "notes.bin"),
        named(MIMEBase("image", "png"), "logo.png"),
    ))  # fmt: skip
    assert sources(outcome) == ["body"]


@pytest.mark.parametrize(
    "ctype", ["application/pgp-signature", "application/pgp-keys", "application/pgp-encrypted"]
)
def test_pgp_parts_are_never_read(ctype: str) -> None:
    maintype, subtype = ctype.split("/")
    part = MIMEBase(maintype, subtype)
    part.set_payload("Report: type2\nPeriod: 2026-10\nBogus: x\n")
    assert sources(parse(mixed(MIMEText(TYPE2, "plain", "utf-8"), part))) == ["body"]


def test_forwarded_message_and_nested_ciphertext_are_never_read() -> None:
    forwarded = MIMEMessage(MIMEText(TYPE2, "plain", "utf-8"))
    encrypted = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    encrypted.attach(MIMEText(TYPE2, "plain", "utf-8"))
    outcome = parse(mixed(forwarded, encrypted))
    assert outcome.errors == (ReportError("message", None, NO_REPORT),)


def test_armored_text_parts_are_skipped() -> None:
    armored = MIMEText("\n-----BEGIN PGP MESSAGE-----\n\nReport: type2\n", "plain", "utf-8")
    assert parse(armored).errors == (ReportError("message", None, NO_REPORT),)
    assert sources(parse(mixed(armored, MIMEText(TYPE2, "plain", "utf-8")))) == ["body part 2"]


def test_signed_multipart_reads_the_report_not_the_signature() -> None:
    signed = MIMEMultipart("signed", protocol="application/pgp-signature", micalg="pgp-sha256")
    signed.attach(MIMEText(TYPE2, "plain", "utf-8"))
    signature = MIMEBase("application", "pgp-signature")
    signature.set_payload("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n")
    signed.attach(signature)
    assert sources(parse(signed)) == ["body"]


def test_header_protection_legacy_display_is_skipped() -> None:
    text = "Subject: Monthly statistics\r\nTo: stats@clearinghouse.example\r\n\r\n" + TYPE2
    part = MIMEText(text.replace("Other: 1", "Other: x"), "plain", "utf-8")
    part.set_param("hp-legacy-display", "1")
    assert [(e.line, e.message) for e in parse(part).errors] == [
        (7, '"Other" must be a whole number, not "x"')
    ]
    unmarked = MIMEText(text, "plain", "utf-8")
    assert parse(unmarked).errors[0].message.startswith('text before the first "Report:" line')


def test_nothing_found_is_one_error() -> None:
    note = MIMEText("Thanks!\n", "plain", "utf-8")
    outcome = parse(mixed(note))
    assert outcome.errors == (ReportError("message", None, NO_REPORT),)
    assert outcome.nothing_found
    assert parse(mixed()).errors == (ReportError("message", None, NO_REPORT),)
    assert not parse(MIMEText(TYPE2, "plain", "utf-8")).nothing_found
    assert not parse(MIMEText(TYPE2 + "x", "plain", "utf-8")).nothing_found


def test_unnamed_parts_and_errors_in_part_order() -> None:
    first = MIMEText(TYPE2.replace("12", "x"), "plain", "utf-8")
    second = MIMEText(TYPE2.replace("2026-10", "2026-09").replace("Other", "Nope"), "plain")
    broken_csv = csv_part(CSV.replace("3", "-3"))
    outcome = parse(mixed(first, broken_csv, second))
    assert [(e.source, e.line) for e in outcome.errors] == [
        ("body", 3),
        ("stats.csv", 2),
        ("body part 2", 4),
    ]


def test_same_report_in_body_and_attachment() -> None:
    doc = {**JSON, "period": "2026-10"}
    outcome = parse(mixed(MIMEText(TYPE2, "plain", "utf-8"), json_part(doc)))
    assert outcome.errors == (
        ReportError(
            "stats.json",
            None,
            "a second type 2 report for 2026-10 (the first is in body, line 1);"
            " send one report per type and month",
        ),
    )


def test_filenames_are_sanitised() -> None:
    hostile = "C:\\tmp\\../évil\x07\x1b[31m" + "n" * 100 + ".csv"
    outcome = parse(mixed(csv_part(filename=hostile)))
    (source,) = sources(outcome)
    assert source == "vil[31m" + "n" * 53
    assert len(source) == 60
    encoded = ("utf-8", "", "Stätistik.csv")
    assert sources(parse(mixed(named(MIMEText(CSV, "csv", "utf-8"), encoded)))) == ["Sttistik.csv"]


def test_charsets() -> None:
    latin = MIMEText(TYPE2 + "Team: CERT-Österreich\n", "plain", "iso-8859-1")
    assert parse(latin).reports[0].claimed_team == "CERT-Österreich"
    for charset in ("x-unknown", "zlib", "base64", "idna", "utf-8\x00", "undefined"):
        part = raw(f'Content-Type: text/plain; charset="{charset}"\n\n{TYPE2}Team: Ö\n')
        assert parse(part).ok, charset
    undeclared = email.message_from_bytes(b"\n" + TYPE2.encode() + "Team: CERT-Ö\n".encode())
    assert parse(undeclared).reports[0].claimed_team == "CERT-Ö"
    ascii_label = email.message_from_bytes(
        b"Content-Type: text/plain; charset=us-ascii\n\n" + TYPE2.encode() + b"Team: \xff\n"
    )
    assert parse(ascii_label).reports[0].claimed_team == "\ufffd"


def test_damaged_base64_is_an_error() -> None:
    part = raw("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n@@@not base64\n")
    assert parse(part).errors == (
        ReportError("body", None, "the base64 encoding is damaged; not read"),
    )
    truncated = raw("Content-Type: text/csv\nContent-Transfer-Encoding: base64\n\nUmVwb3J0\nU\n")
    assert parse(truncated).errors[0].message == "the base64 encoding is damaged; not read"


def test_base64_without_padding_is_read() -> None:
    import base64

    encoded = base64.b64encode(TYPE2.encode()).decode().rstrip("=")
    part = raw(f"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{encoded}\n")
    assert parse(part).ok


def test_quoted_printable() -> None:
    good = "Report: type2\nPer=\niod: 2026-10\nOther: =31  \nFraud: 2=\n\n"
    part = raw(f"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n{good}")
    assert parse(part).reports[0].counts == {  # type: ignore[union-attr]
        ("other", None): 1,
        ("fraud", None): 2,
    }
    bad = raw("Content-Transfer-Encoding: quoted-printable\n\n" + TYPE2 + "Spam=ZZ: 1\n")
    assert parse(bad).errors == (
        ReportError("body", None, "the quoted-printable encoding is damaged; not read"),
    )


def test_unknown_transfer_encoding_is_an_error() -> None:
    part = raw("Content-Transfer-Encoding: x-rot13\n\n" + TYPE2)
    assert parse(part).errors[0].message.startswith("unknown Content-Transfer-Encoding")


def test_payload_built_from_non_ascii_str() -> None:
    entity = Message()
    entity.set_payload(TYPE2 + "Team: Ünïcode\n")
    assert parse(entity).reports[0].claimed_team == "Ünïcode"


def test_too_large_part() -> None:
    part = MIMEText(TYPE2 + "#" * (1024 * 1024), "plain", "utf-8")
    assert parse(part).errors == (ReportError("body", None, "larger than 1024 KiB; not read"),)


def test_too_many_parts() -> None:
    many = mixed(*[MIMEText("hi", "plain") for _ in range(99)])
    assert parse(many).errors == (ReportError("message", None, NO_REPORT),)
    too_many = mixed(*[MIMEText("hi", "plain") for _ in range(100)])
    assert parse(too_many).errors == (
        ReportError("message", None, "the message has more than 100 parts; it was not read"),
    )


def test_too_deep() -> None:
    def nest(levels: int) -> Message:
        entity: Message = MIMEText(TYPE2, "plain", "utf-8")
        for _ in range(levels - 1):
            entity = mixed(entity)
        return entity

    assert parse(nest(10)).ok
    assert parse(nest(11)).errors == (
        ReportError(
            "message", None, "the message is nested more than 10 levels deep; it was not read"
        ),
    )


@pytest.mark.parametrize(
    "headers",
    [
        "Content-Type: multipart/mixed\n",  # no boundary
        "Content-Type: text/plain; charset*=x''%ff%fe\n",
        "Content-Type: application/octet-stream\nContent-Disposition: attachment;"
        " filename*=x-unknown''%FF%FE.csv\n",
        "Content-Type: ;;;\n",
        'Content-Type: text/plain; charset="\n',
        "Content-Disposition: attachment; filename*0*=utf-8''a; filename*1=b.json\n",
    ],
)
def test_malformed_headers_do_not_crash(headers: str) -> None:
    outcome = parse(raw(headers + "\n" + TYPE2))
    assert outcome.ok or outcome.errors


# --- quoted-printable bodies, decoded a line at a time ---------------------------------------


def qp_entity(encoded: bytes) -> Message:
    head = b'Content-Type: text/plain; charset="utf-8"\n'
    head += b"Content-Transfer-Encoding: quoted-printable\n\n"
    return email.message_from_bytes(head + encoded)


@given(st.binary(max_size=3000), st.booleans())
@settings(max_examples=200, deadline=None)
def test_quoted_printable_a_line_at_a_time_is_the_whole_decoding(data: bytes, crlf: bool) -> None:
    encoded = quopri.encodestring(data)
    if crlf:
        encoded = encoded.replace(b"\n", b"\r\n")
    assert quoted_printable(qp_entity(encoded), 10_000) == quopri.decodestring(encoded)


def test_quoted_printable_stops_once_past_the_limit_or_at_damage() -> None:
    encoded = quopri.encodestring(b"x=y\n" * 1000)  # 4000 bytes decoded
    assert quoted_printable(qp_entity(encoded), 4000) == b"x=y\n" * 1000
    assert quoted_printable(qp_entity(encoded), 3999) == BodyProblem("larger than 3 KiB; not read")
    damaged = qp_entity(b"fine line\nbad =ZZ escape\n")
    assert quoted_printable(damaged, 4000) == BodyProblem(
        "the quoted-printable encoding is damaged; not read"
    )


def test_a_report_body_too_large_is_refused_whatever_its_encoding() -> None:
    line = "# a comment line of a report that is far too long to be read\n"
    report = line * (MAX_INPUT_BYTES // len(line) + 1) + "Report: type1\nPeriod: 2026-10\n"
    seven_bit = email.message_from_string(
        'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 7bit\n\n' + report
    )
    quoted = qp_entity(quopri.encodestring(report.encode()))
    for entity in (seven_bit, quoted):
        [error] = parse(entity).errors
        assert "larger than 1024 KiB; not read" in str(error)
