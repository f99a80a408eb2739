"""keys/wrap.py: outgoing PGP/MIME, signed by the gateway, encrypted, headers protected.

Every sealed message is opened again the way the recipient's mail client would: parse
the RFC 3156 envelope, decrypt with the recipient's key, read the RFC 9788 payload.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage, Message, MIMEPart
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.gpg import GnuPG
from keys.gpg_status import CryptoResult
from keys.shapes import Limits
from keys.unwrap import Unwrapped, Unwrapper
from keys.wrap import (
    NEUTRAL_SUBJECT,
    Attachment,
    Envelope,
    _envelope_by_package,
    _plain_payload,
    _strict_payload,
    encrypted_envelope,
    new_message_id,
    protected_payload,
    seal,
)

GATEWAY = "stats@clearinghouse.example"
TEAM = "cert@alpha.example"
DATE = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[GnuPG, str]:
    gpg = GnuPG(tmp_path / "gateway")
    return gpg, gpg.generate_key("Clearinghouse", GATEWAY)


@pytest.fixture
def team(tmp_path: Path, gateway: tuple[GnuPG, str]) -> tuple[GnuPG, str]:
    gw, gw_fpr = gateway
    gpg = GnuPG(tmp_path / "team")
    fpr = gpg.generate_key("CERT Alpha", TEAM)
    gpg.import_keys(gw.export_public(gw_fpr).encode())
    gw.import_keys(gpg.export_public(fpr).encode())
    return gpg, fpr


def envelope(**changes: str) -> Envelope:
    fields: dict[str, object] = {
        "sender": f"Clearinghouse <{GATEWAY}>",
        "recipient": TEAM,
        "subject": "Receipt for submission 7",
        "date": DATE,
        "message_id": "<abc@clearinghouse.example>",
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


def sealed(
    gateway: tuple[GnuPG, str],
    team: tuple[GnuPG, str],
    env: Envelope | None = None,
    body: str = "Stored.\n",
    attachments: tuple[Attachment, ...] = (),
) -> bytes:
    gw, gw_fpr = gateway
    return seal(
        gw,
        env or envelope(),
        body,
        recipient_fingerprints=[team[1]],
        signer=gw_fpr,
        attachments=attachments,
    )


def parts_of(msg: Message) -> list[Message]:
    parts = msg.get_payload()
    assert isinstance(parts, list)
    return [p for p in parts if isinstance(p, Message)]


def open_sealed(raw: bytes, gpg: GnuPG) -> tuple[Message, CryptoResult, EmailMessage]:
    outer = email.message_from_bytes(raw)
    ciphertext = parts_of(outer)[1].get_payload(decode=True)
    assert isinstance(ciphertext, bytes)
    result = gpg.decrypt(ciphertext)
    inner = email.message_from_bytes(result.data, policy=email.policy.default)
    assert isinstance(inner, EmailMessage)
    return outer, result, inner


def text(part: MIMEPart) -> str:
    """A text part's content with the wire's CRLF line ends read back as LF."""
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_outer_message_is_rfc3156_with_a_neutral_subject(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    raw = sealed(gateway, team)
    outer = email.message_from_bytes(raw)
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    assert outer["Subject"] == NEUTRAL_SUBJECT == "[...]"
    assert (outer["From"], outer["To"]) == (f"Clearinghouse <{GATEWAY}>", TEAM)
    assert outer["Message-ID"] == "<abc@clearinghouse.example>"
    assert email.utils.parsedate_to_datetime(outer["Date"]) == DATE
    parts = parts_of(outer)
    assert [p.get_content_type() for p in parts] == [
        "application/pgp-encrypted",
        "application/octet-stream",
    ]
    assert "Version: 1" in parts[0].get_payload()
    assert b"Receipt for submission" not in raw and b"Stored." not in raw
    assert all(len(line) <= 78 for line in raw.split(b"\r\n") if line)
    assert raw.isascii()


def test_a_non_ascii_display_name_outside_is_encoded_apart_from_its_address(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    env = envelope(sender=f"Clearinghouse Zürich <{GATEWAY}>")
    raw = sealed(gateway, team, env)
    outer = email.message_from_bytes(raw, policy=email.policy.default)
    assert raw.isascii()
    assert outer["From"].addresses[0].display_name == "Clearinghouse Zürich"
    assert outer["From"].addresses[0].addr_spec == GATEWAY
    assert outer["Subject"] == NEUTRAL_SUBJECT


def test_decrypts_with_the_recipient_key_and_is_signed_by_the_gateway(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str], tmp_path: Path
) -> None:
    raw = sealed(gateway, team)
    _, result, inner = open_sealed(raw, team[0])
    assert result.clean and result.decrypted and result.plaintext_packets == 1
    [sig] = result.signatures
    assert (sig.outcome, sig.primary_fingerprint) == ("good", gateway[1])
    assert text(inner) == "Stored.\n"
    stranger = GnuPG(tmp_path / "stranger")
    stranger.generate_key("S", "s@s.example")
    _, other, _ = open_sealed(raw, stranger)
    assert not other.decrypted and other.data == b""


def test_the_real_headers_are_protected_inside(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    env = envelope(in_reply_to="<orig@alpha.example>")
    _, _, inner = open_sealed(sealed(gateway, team, env), team[0])
    assert inner.get_content_type() == "text/plain"
    assert inner.get_param("hp") == "cipher"
    assert inner.get_param("protected-headers") == "v1"
    assert inner["Subject"] == "Receipt for submission 7"
    assert (inner["From"], inner["To"]) == (f"Clearinghouse <{GATEWAY}>", TEAM)
    assert inner["Message-ID"] == "<abc@clearinghouse.example>"
    assert inner["In-Reply-To"] == "<orig@alpha.example>"
    hp_outer = [str(v) for v in inner.get_all("HP-Outer", [])]
    assert f"Subject: {NEUTRAL_SUBJECT}" in hp_outer
    assert f"From: Clearinghouse <{GATEWAY}>" in hp_outer
    assert f"To: {TEAM}" in hp_outer
    assert "In-Reply-To: <orig@alpha.example>" in hp_outer
    assert not any(v.startswith("Subject: Receipt") for v in hp_outer)


def test_in_reply_to_on_the_outside_too(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    outer = email.message_from_bytes(sealed(gateway, team, envelope(in_reply_to="<o@a.example>")))
    assert outer["In-Reply-To"] == "<o@a.example>"
    assert email.message_from_bytes(sealed(gateway, team))["In-Reply-To"] is None


@pytest.mark.parametrize("field", ["subject", "sender", "recipient", "message_id", "in_reply_to"])
@pytest.mark.parametrize("evil", ["\r\nBcc: victim@evil.example", "\nX-Evil: 1", "a\rb", "a\x00b"])
def test_line_breaks_in_a_header_value_are_refused(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str], field: str, evil: str
) -> None:
    with pytest.raises(ValueError, match="line break"):
        sealed(gateway, team, envelope(**{field: f"x{evil}"}))


def test_line_breaks_in_an_attachment_name_are_refused(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    evil = Attachment("a.pdf\r\nContent-Type: text/html", "application/pdf", b"%PDF")
    with pytest.raises(ValueError):
        sealed(gateway, team, attachments=(evil,))


def test_non_ascii_subject_and_body_are_encoded(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    subject = "Empfangsbestätigung – Статистика 2026-10 ✓"
    body = "Grüße, Ωmega\n"
    raw = sealed(gateway, team, envelope(subject=subject), body)
    _, result, inner = open_sealed(raw, team[0])
    assert result.data.isascii()  # RFC 2047 words and quoted-printable, no raw 8-bit
    assert inner["Subject"] == subject
    assert text(inner) == body
    assert inner.get_content_charset() == "utf-8"


def test_attachments_round_trip(gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
    csv = b"field,average\nrequests,1204\n"
    attachments = (
        Attachment("public.pdf", "application/pdf", pdf),
        Attachment("public.csv", "text/csv", csv),
    )
    _, result, inner = open_sealed(sealed(gateway, team, attachments=attachments), team[0])
    assert result.clean
    assert inner.get_content_type() == "multipart/mixed"
    assert inner.get_param("hp") == "cipher" and inner["Subject"] == "Receipt for submission 7"
    body, *files = inner.iter_parts()
    assert body.get_content_type() == "text/plain" and text(body) == "Stored.\n"
    got = [(f.get_filename(), f.get_content_type(), f.get_payload(decode=True)) for f in files]
    assert got == [("public.pdf", "application/pdf", pdf), ("public.csv", "text/csv", csv)]


def test_the_gateway_unwraps_what_a_peer_sealed(
    gateway: tuple[GnuPG, str], team: tuple[GnuPG, str]
) -> None:
    """`seal` writes the combined shape teams send: the gateway's unwrap accepts it."""
    team_gpg, team_fpr = team
    env = Envelope(TEAM, GATEWAY, "Monthly statistics", DATE, new_message_id("alpha.example"))
    raw = seal(
        team_gpg, env, "Report: type1\n", recipient_fingerprints=[gateway[1]], signer=team_fpr
    )
    u = Unwrapper(gateway[0], Limits()).unwrap(raw)
    assert isinstance(u, Unwrapped)
    assert u.protected_to == (GATEWAY,) and u.protected_from == (TEAM,)
    assert [s.primary_fingerprint for s in u.verification.signatures] == [team_fpr]


def test_new_message_id() -> None:
    first, second = new_message_id("clearinghouse.example"), new_message_id("clearinghouse.example")
    assert first != second
    assert first.startswith("<") and first.endswith("@clearinghouse.example>")


# --- the direct writer: byte for byte what the email package writes ---------------------

ARMORED = "-----BEGIN PGP MESSAGE-----\n\nhF4DAbCdEf==\n=abcd\n-----END PGP MESSAGE-----\n"
BOUNDARY = "===============1234567890123456789=="
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90)
addresses = st.one_of(
    st.sampled_from([TEAM, "A.B+c@Sub.Example.ORG", "x@y", '"q"@x.example', "a b@x.example"]),
    st.from_regex(r"[a-z0-9.+_-]{1,20}@[a-z0-9-]{1,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
)


def usual(subject: str = "Receipt: type1 2026-10", recipient: str = TEAM) -> Envelope:
    return Envelope(GATEWAY, recipient, subject, DATE, "<abc@clearinghouse.example>")


@given(subject=printable, recipient=addresses, body=st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_a_payload_written_directly_is_the_email_packages(
    subject: str, recipient: str, body: str
) -> None:
    env = usual(subject, recipient)
    direct = _plain_payload(env, body)
    if direct is not None:  # else the email package writes it: nothing to compare
        assert direct == _strict_payload(env, body, ())


@given(subject=printable, recipient=addresses)
@settings(max_examples=300, deadline=None)
def test_an_envelope_written_directly_is_the_email_packages(subject: str, recipient: str) -> None:
    fields = [("From", GATEWAY), ("To", recipient), ("Subject", subject)]
    assert encrypted_envelope(fields, ARMORED, BOUNDARY) == _envelope_by_package(
        fields, ARMORED, BOUNDARY
    )


def test_the_usual_reply_is_written_directly() -> None:
    # The comparisons above would pass vacuously if the direct path were never taken.
    body = "Stored: Requests = 1204\n\u00e9t\u00e9 \u2014 " + "x" * 120 + "\n"
    direct = _plain_payload(usual(), body)
    assert direct is not None and direct == _strict_payload(usual(), body, ())
    assert protected_payload(usual(), body) == direct


@pytest.mark.parametrize(
    "env",
    [
        usual(subject="Receipt: " + "type1 2026-10, " * 6),  # longer than a line: folded
        usual(subject="Re\u00e7u"),  # non-ASCII: RFC 2047
        usual(subject="=?utf-8?q?x?="),  # an encoded word a parser would decode
        usual(recipient='"Team" <cert@alpha.example>'),  # not a bare address
    ],
)
def test_anything_unusual_is_left_to_the_email_package(env: Envelope) -> None:
    assert _plain_payload(env, "body\n") is None
    assert protected_payload(env, "body\n") == _strict_payload(env, "body\n", ())


def test_the_boundary_never_occurs_in_the_armored_text(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = iter([1234567890123456789, 42])
    monkeypatch.setattr("keys.wrap.secrets.randbelow", lambda _limit: next(taken))
    mail = encrypted_envelope([("Subject", NEUTRAL_SUBJECT)], ARMORED + f"--{BOUNDARY}\n")
    assert f'boundary="{"=" * 15}{42:019d}=="' in mail.decode()
