"""Attack classes 5, 6 and 13: where the signature sits in the MIME tree, and broken MIME.

The signed entity must be the root of what was decrypted; anything unsigned beside or
around it is `partially-signed`. Broken MIME of every kind ends in a state with a reason
code, never in an exception, and stores nothing.
"""

from __future__ import annotations

import email
from collections.abc import Callable

import pytest
from hostile import encrypt_to_gateway, envelope, gpg, mime_text, multipart
from pipeline_support import assert_refused, outbox_entries, process, stored
from samples import sample
from support import INTAKE, TYPE1, TeamClient

from gateway.app import App
from keys.compose import multipart_signed

REPORT = mime_text(TYPE1)
UNSIGNED = mime_text("Requests: 5\n")


def _encrypted_unsigned(team: TeamClient, plaintext: bytes) -> bytes:
    """Encrypt without a signature at the encryption layer (RFC 3156 §6.1 style)."""
    return envelope(team, encrypt_to_gateway(team, plaintext))


def _signed(team: TeamClient) -> bytes:
    return multipart_signed(team.gpg, REPORT, team.fingerprint)


# --- 5. partial signing --------------------------------------------------------------------


@pytest.mark.parametrize("order", ["prepended", "appended"])
def test_unsigned_text_beside_the_signed_part(app: App, team: TeamClient, order: str) -> None:
    parts = [UNSIGNED, _signed(team)] if order == "prepended" else [_signed(team), UNSIGNED]
    assert_refused(app, _encrypted_unsigned(team, multipart("mixed", parts)), "partially-signed")


@pytest.mark.parametrize("container", ["alternative", "related", "mixed"])
def test_signed_part_hidden_inside_another_multipart(
    app: App, team: TeamClient, container: str
) -> None:
    raw = _encrypted_unsigned(team, multipart(container, [_signed(team)]))
    assert_refused(app, raw, "partially-signed")


def test_signed_part_as_an_attachment(app: App, team: TeamClient) -> None:
    attachment = b"Content-Disposition: attachment; filename=report.eml\r\n" + _signed(team)
    raw = _encrypted_unsigned(team, multipart("mixed", [UNSIGNED, attachment]))
    assert_refused(app, raw, "partially-signed")


def test_signed_message_forwarded_as_message_rfc822(app: App, team: TeamClient) -> None:
    inner = f"From: {team.email}\r\n".encode() + _signed(team)
    wrapped = b"Content-Type: message/rfc822\r\n\r\n" + inner
    raw = _encrypted_unsigned(team, multipart("mixed", [UNSIGNED, wrapped]))
    assert_refused(app, raw, "partially-signed")


def test_inline_signed_block_inside_unsigned_text(app: App, team: TeamClient) -> None:
    block = gpg(team.gpg.home, "--local-user", team.fingerprint, "--clearsign", data=TYPE1.encode())
    plaintext = b"Hello, our figures:\n\n" + block + b"\nRequests: 5\n"
    armored = encrypt_to_gateway(team, plaintext)
    raw = f"From: {team.email}\r\nTo: {INTAKE}\r\n\r\n".encode() + armored
    assert_refused(app, raw, "partially-signed")


def test_unencrypted_mixed_with_a_signed_part_when_encryption_is_optional(
    app_with: Callable[..., App], team: TeamClient
) -> None:
    optional = app_with(policy={"require_encryption": False})
    raw = f"From: {team.email}\r\nTo: {INTAKE}\r\n".encode() + multipart(
        "mixed", [UNSIGNED, _signed(team)]
    )
    assert_refused(optional, raw, "partially-signed")


def test_bare_multipart_signed_is_accepted_when_encryption_is_optional(
    app_with: Callable[..., App], team: TeamClient
) -> None:
    optional = app_with(policy={"require_encryption": False})
    raw = f"From: {team.email}\r\nTo: {INTAKE}\r\n".encode() + _signed(team)
    assert process(optional, raw) == ("accepted", None)


# --- 6. encrypt-then-sign ------------------------------------------------------------------


def _encrypt_then_sign(team: TeamClient) -> bytes:
    """multipart/signed around a complete multipart/encrypted entity (sign outside)."""
    encrypted = email.message_from_bytes(team.submit())
    for header in ("From", "To", "Subject", "Message-ID", "Date", "MIME-Version"):
        del encrypted[header]
    entity = multipart_signed(team.gpg, encrypted.as_bytes(), team.fingerprint)
    return f"From: {team.email}\r\nTo: {INTAKE}\r\n".encode() + entity


def test_encrypt_then_sign_is_refused_when_encryption_is_required(
    app: App, team: TeamClient
) -> None:
    assert_refused(app, _encrypt_then_sign(team), "not-encrypted")


def test_encrypt_then_sign_never_attributes_the_plaintext_to_the_signer(
    app: App, app_with: Callable[..., App], team: TeamClient
) -> None:
    optional = app_with(policy={"require_encryption": False})
    state, reason = process(optional, _encrypt_then_sign(team))
    # The signature is the team's, but what it covers is ciphertext, which is never
    # decrypted: no report is found in the signed content.
    assert (state, reason) == ("rejected", "parse-error")
    assert stored(app) == []
    [(kind, recipient, raw)] = outbox_entries(app)
    assert (kind, recipient) == ("rejection", team.email)
    # The report's line, not its bare number: the reply names the gateway key, whose
    # random fingerprint can hold "1204" (one did, in CI).
    assert "Requests: 1204" in TYPE1
    assert b"Requests: 1204" not in team.decrypt(raw).data


# --- 13. malformed MIME ----------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    head = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
        for i in range(depth)
    )
    return head + REPORT + b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))


# The fixed samples are files (tests/data/mime/, described in tests/data/README.md);
# those made by a rule, or too large to keep, are made here.
MALFORMED: dict[str, bytes] = {
    "missing boundary": sample("mime/missing-boundary.eml"),
    "reused boundary": sample("mime/reused-boundary.eml"),
    "1000-deep nesting": _nested(1000),
    "broken base64": sample("mime/broken-base64.eml"),
    "broken quoted-printable": sample("mime/broken-quoted-printable.eml"),
    "undeclared charset": sample("mime/undeclared-charset.eml"),
    "unknown charset": sample("mime/unknown-charset.eml"),
    "NUL bytes": sample("mime/nul-bytes.eml"),
    "1 MB header line": b"X-Filler: " + b"a" * 1_048_576 + b"\r\n" + REPORT,
    "no header at all": sample("mime/no-header.eml"),
    "binary junk": bytes(range(256)) * 64,
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_mime_as_the_outer_message(app: App, team: TeamClient, name: str) -> None:
    state, reason = process(app, MALFORMED[name])
    assert state == "quarantined" and reason in {"not-encrypted", "malformed-mime"}
    assert stored(app) == [] and outbox_entries(app) == []


# What each malformed structure becomes when a registered team signed and encrypted it.
# Structural ambiguity is refused outright; broken encodings reach the parser, which
# names the problem to the team; an over-long header line is still the team's content.
INSIDE: dict[str, tuple[str, str | None]] = {
    "missing boundary": ("quarantined", "malformed-mime"),
    "reused boundary": ("quarantined", "malformed-mime"),
    "1000-deep nesting": ("quarantined", "malformed-mime"),
    "broken base64": ("rejected", "invalid-report"),
    "broken quoted-printable": ("rejected", "invalid-report"),
    "undeclared charset": ("rejected", "invalid-report"),
    "unknown charset": ("rejected", "invalid-report"),
    "NUL bytes": ("rejected", "invalid-report"),
    "1 MB header line": ("accepted", None),
    "no header at all": ("rejected", "parse-error"),
    "binary junk": ("rejected", "parse-error"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_mime_inside_a_signed_and_encrypted_message(
    app: App, team: TeamClient, name: str
) -> None:
    raw = envelope(team, encrypt_to_gateway(team, MALFORMED[name], sign_with=[team.fingerprint]))
    assert process(app, raw) == INSIDE[name]
    if INSIDE[name][0] != "accepted":
        assert stored(app) == []
    kinds = [kind for kind, _, _ in outbox_entries(app)]
    assert (
        kinds
        == {"quarantined": [], "rejected": ["rejection"], "accepted": ["receipt"]}[INSIDE[name][0]]
    )
