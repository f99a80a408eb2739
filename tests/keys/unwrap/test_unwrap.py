"""keys/unwrap.py with real keys: each accepted shape, and each refusal, module-level.

The gateway and one team each have a fresh GnuPG home; messages are built the way a
mail client would (keys/compose.py) or by hand where a client would never build them.
Whether a signature is acceptable is policy's job: here only the shape and the facts.
"""

from __future__ import annotations

import email
import hashlib
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from support import INTAKE, TYPE1, TeamClient

from keys.compose import multipart_signed
from keys.gpg import GnuPG
from keys.shapes import Limits, Refusal
from keys.unwrap import Unwrapped, Unwrapper
from keys.wrap import Envelope, encrypted_envelope, protected_payload

TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + TYPE1.encode().replace(
    b"\n", b"\r\n"
)


def unwrap(
    gateway: tuple[GnuPG, str], raw: bytes, *, require_encryption: bool = True, **limits: int
) -> Unwrapped | Refusal:
    return Unwrapper(gateway[0], Limits(**limits), require_encryption=require_encryption).unwrap(
        raw
    )


def accepted(result: Unwrapped | Refusal) -> Unwrapped:
    assert isinstance(result, Unwrapped), result
    return result


def reason(result: Unwrapped | Refusal) -> str:
    assert isinstance(result, Refusal), result
    return result.reason


def headers(sender: str = "cert@alpha.example", extra: str = "") -> bytes:
    return (
        f"From: CERT Alpha <{sender}>\r\nTo: {INTAKE}\r\nSubject: stats\r\n"
        f"MIME-Version: 1.0\r\n{extra}"
    ).encode()


def text_message(body: bytes) -> bytes:
    return headers(extra="Content-Type: text/plain; charset=us-ascii\r\n\r\n") + body


def mixed(*parts: bytes, boundary: str = "mixed-b") -> bytes:
    """A multipart/mixed entity (no outer header) over already-built parts."""
    out = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def nested(depth: int) -> bytes:
    """A MIME tree `depth` levels deep (the root counts as one)."""
    entity = b"Content-Type: text/plain\r\n\r\nleaf\r\n"
    for level in range(depth - 1):
        entity = mixed(entity, boundary=f"level{level}")
    return entity


def pgp_mime(armored: str) -> bytes:
    fields = [("From", "cert@alpha.example"), ("To", INTAKE), ("Subject", "[...]")]
    return encrypted_envelope(fields, armored)


def encrypted_only(team: TeamClient, plaintext: bytes) -> bytes:
    return pgp_mime(team.gpg.encrypt(plaintext, [team.gateway_fingerprint]))


def team_cli(team: TeamClient, *args: str, stdin: bytes = b"") -> bytes:
    """The team's gpg command line, for messages python-gnupg cannot make."""
    cmd = ["gpg", "--homedir", str(team.gpg.home), "--batch", "--trust-model", "always", *args]
    return subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout


def clearsign(team: TeamClient, text: bytes) -> bytes:
    return team_cli(team, "--local-user", team.fingerprint, "--clearsign", stdin=text)


def payload() -> bytes:
    env = Envelope(
        "cert@alpha.example", INTAKE, "Monthly statistics", datetime.now(UTC), "<1@alpha.example>"
    )
    return protected_payload(env, TYPE1)


def only_good_signature_by(u: Unwrapped, fingerprint: str) -> None:
    [sig] = u.verification.signatures
    assert (sig.outcome, sig.primary_fingerprint) == ("good", fingerprint)


# --- accepted shapes --------------------------------------------------------------------


def test_combined_pgp_mime(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    u = accepted(unwrap(gateway, team.submit(TYPE1, form="combined")))
    only_good_signature_by(u, team.fingerprint)
    assert u.encrypted and u.verification.clean
    assert u.signed_bytes == u.verification.data  # the signature covers all the plaintext
    assert u.content_sha256 == hashlib.sha256(u.signed_bytes).hexdigest()
    assert u.entity["Subject"] == "Monthly statistics"
    assert u.entity.get_param("hp") == "cipher"
    assert u.entity.get_payload(decode=True) == TYPE1.encode().replace(b"\n", b"\r\n")
    assert (u.outer_from, u.protected_from, u.protected_to) == (
        ("cert@alpha.example",),
        ("cert@alpha.example",),
        (INTAKE,),
    )


def test_encrypted_multipart_signed(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    u = accepted(unwrap(gateway, team.submit(TYPE1, form="signed-then-encrypted")))
    only_good_signature_by(u, team.fingerprint)
    assert u.encrypted
    head = u.signed_bytes.split(b"\r\n\r\n")[0]
    assert b"Content-Type: text/plain" in head and b"Subject: Monthly statistics" in head
    assert b"\n" not in u.signed_bytes.replace(b"\r\n", b"")  # canonical CRLF
    assert u.entity.get_content_type() == "text/plain"  # the signed part, not the wrapper
    assert u.entity["Subject"] == "Monthly statistics"
    assert u.protected_to == (INTAKE,)
    assert b"Report: type1" in u.signed_bytes


def test_inline_encrypted_and_signed(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    raw = team.submit(TYPE1, form="inline")
    assert email.message_from_bytes(raw).get_content_type() == "text/plain"
    u = accepted(unwrap(gateway, raw))
    only_good_signature_by(u, team.fingerprint)
    assert u.encrypted and u.signed_bytes == TYPE1.encode()
    assert u.entity.get_payload(decode=True) == TYPE1.encode()
    assert (u.protected_to, u.protected_from) == (None, ())
    assert u.outer_from == ("cert@alpha.example",)


def test_inline_encrypted_clearsigned_text(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    armored = team.gpg.encrypt(clearsign(team, TYPE1.encode()), [team.gateway_fingerprint])
    u = accepted(unwrap(gateway, text_message(armored.encode())))
    only_good_signature_by(u, team.fingerprint)
    assert u.encrypted and u.signed_bytes == TYPE1.encode()
    assert u.entity.get_payload(decode=True) == TYPE1.encode()


def test_pgp_mime_encrypted_clearsigned_text(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    plaintext = b"Content-Type: text/plain\r\n\r\n" + clearsign(team, TYPE1.encode())
    u = accepted(unwrap(gateway, encrypted_only(team, plaintext)))
    only_good_signature_by(u, team.fingerprint)
    assert u.signed_bytes == TYPE1.encode()


def test_bare_multipart_signed_only_without_required_encryption(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = headers() + multipart_signed(team.gpg, payload(), team.fingerprint)
    u = accepted(unwrap(gateway, raw, require_encryption=False))
    only_good_signature_by(u, team.fingerprint)
    assert not u.encrypted and u.protected_to == (INTAKE,)
    assert reason(unwrap(gateway, raw)) == "not-encrypted"


def test_clearsigned_body_only_without_required_encryption(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = text_message(clearsign(team, TYPE1.encode()))
    u = accepted(unwrap(gateway, raw, require_encryption=False))
    only_good_signature_by(u, team.fingerprint)
    assert not u.encrypted and u.signed_bytes == TYPE1.encode()
    assert reason(unwrap(gateway, raw)) == "not-encrypted"


def test_multipart_signed_with_lf_line_endings_still_verifies(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = headers() + multipart_signed(team.gpg, payload(), team.fingerprint)
    lf = raw.replace(b"\r\n", b"\n")
    assert b"\r" not in lf
    u = accepted(unwrap(gateway, lf, require_encryption=False))
    only_good_signature_by(u, team.fingerprint)
    assert b"\r\n" in u.signed_bytes


def test_tampered_multipart_signed_reaches_policy_as_bad(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = headers() + multipart_signed(team.gpg, payload(), team.fingerprint)
    u = accepted(unwrap(gateway, raw.replace(b"1204", b"9999"), require_encryption=False))
    assert [s.outcome for s in u.verification.signatures] == ["bad"]


def test_a_non_detached_signature_in_multipart_signed_proves_nothing(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    """A whole signed message (over other text) in the signature part: gpg must not
    report its embedded text as the signed content."""
    full = team_cli(team, "--local-user", team.fingerprint, "--sign", "--armor", stdin=b"harmless")
    raw = headers() + (
        b"Content-Type: multipart/signed; micalg=pgp-sha512;\r\n"
        b' protocol="application/pgp-signature"; boundary="s"\r\n\r\n'
        b"--s\r\n" + TEXT_PART + b"\r\n--s\r\n"
        b"Content-Type: application/pgp-signature\r\n\r\n" + full + b"\r\n--s--\r\n"
    )
    u = accepted(unwrap(gateway, raw, require_encryption=False))
    assert not u.verification.clean
    assert all(s.outcome != "good" for s in u.verification.signatures)


# --- refusals: shape ------------------------------------------------------------------


def _encrypted_parts(*parts: bytes) -> bytes:
    ctype = (
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; '
        'boundary="enc"\r\n\r\n'
    )
    body = b"".join(b"--enc\r\n" + p + b"\r\n" for p in parts) + b"--enc--\r\n"
    return headers(extra=ctype) + body


CONTROL = b"Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(lambda data: [data], id="one-part"),
        pytest.param(lambda data: [CONTROL, data, data], id="three-parts"),
        pytest.param(
            lambda data: [b"Content-Type: text/plain\r\n\r\nVersion: 1\r\n", data],
            id="control-not-pgp-encrypted",
        ),
        pytest.param(
            lambda data: [CONTROL, data.replace(b"octet-stream", b"pgp-keys")],
            id="data-not-octet-stream",
        ),
    ],
)
def test_multipart_encrypted_of_the_wrong_shape(
    gateway: tuple[GnuPG, str], team: TeamClient, parts: Callable[[bytes], list[bytes]]
) -> None:
    armored = team.gpg.encrypt(TEXT_PART, [team.gateway_fingerprint]).encode()
    data = b"Content-Type: application/octet-stream\r\n\r\n" + armored
    assert reason(unwrap(gateway, _encrypted_parts(CONTROL, data))) == "not-signed"  # the control
    assert reason(unwrap(gateway, _encrypted_parts(*parts(data)))) == "malformed-mime"


def test_mime_depth_is_capped(gateway: tuple[GnuPG, str]) -> None:
    assert reason(unwrap(gateway, headers() + nested(3), max_mime_depth=3)) == "not-encrypted"
    assert reason(unwrap(gateway, headers() + nested(4), max_mime_depth=3)) == "malformed-mime"


def test_mime_part_count_is_capped(gateway: tuple[GnuPG, str]) -> None:
    leaf = b"Content-Type: text/plain\r\n\r\nx"
    assert reason(unwrap(gateway, headers() + mixed(*[leaf] * 4), max_mime_parts=5)) == (
        "not-encrypted"
    )
    assert reason(unwrap(gateway, headers() + mixed(*[leaf] * 5), max_mime_parts=5)) == (
        "malformed-mime"
    )


def test_limits_apply_inside_the_ciphertext_too(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = encrypted_only(team, nested(5))
    assert reason(unwrap(gateway, raw, max_mime_depth=4)) == "malformed-mime"
    assert reason(unwrap(gateway, raw, max_mime_depth=5)) == "not-signed"


def test_multipart_signed_of_the_wrong_shape(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    good = headers() + multipart_signed(team.gpg, payload(), team.fingerprint)
    other_protocol = good.replace(
        b'protocol="application/pgp-signature"', b'protocol="application/pkcs7-signature"'
    )
    not_a_signature = good.replace(
        b"Content-Type: application/pgp-signature", b"Content-Type: text/plain"
    )
    for raw in (other_protocol, not_a_signature):
        assert reason(unwrap(gateway, raw, require_encryption=False)) == "malformed-mime"


# --- refusals: what is signed ---------------------------------------------------------


@pytest.mark.parametrize("around", [(b"Hello,\n\n", b""), (b"", b"\n-- \nsent from my phone\n")])
def test_text_around_an_inline_armored_block(
    gateway: tuple[GnuPG, str], team: TeamClient, around: tuple[bytes, bytes]
) -> None:
    armored = team.gpg.sign_encrypt(TYPE1.encode(), [team.gateway_fingerprint], team.fingerprint)
    raw = text_message(around[0] + armored.encode() + around[1])
    assert reason(unwrap(gateway, raw)) == "partially-signed"


def test_two_inline_armored_blocks(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    armored = team.gpg.sign_encrypt(TYPE1.encode(), [team.gateway_fingerprint], team.fingerprint)
    raw = text_message(armored.encode() + b"\n" + armored.encode())
    assert reason(unwrap(gateway, raw)) == "partially-signed"


def test_clearsigned_block_inside_unsigned_text(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    raw = text_message(b"Unsigned preface\n" + clearsign(team, TYPE1.encode()))
    assert reason(unwrap(gateway, raw, require_encryption=False)) == "partially-signed"


@pytest.mark.parametrize("require_encryption", [False, True])
def test_signed_part_beside_an_unsigned_part(
    gateway: tuple[GnuPG, str], team: TeamClient, require_encryption: bool
) -> None:
    signed = multipart_signed(team.gpg, TEXT_PART, team.fingerprint)
    unsigned = b"Content-Type: text/plain\r\n\r\nReport: type1\r\nRequests: 1\r\n"
    raw = headers() + mixed(signed, unsigned)
    assert reason(unwrap(gateway, raw, require_encryption=require_encryption)) == (
        "partially-signed"
    )


def test_encrypted_signed_part_beside_an_unsigned_part(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    signed = multipart_signed(team.gpg, TEXT_PART, team.fingerprint)
    unsigned = b"Content-Type: text/plain\r\n\r\nRequests: 99999\r\n"
    assert reason(unwrap(gateway, encrypted_only(team, mixed(signed, unsigned)))) == (
        "partially-signed"
    )


def test_encrypted_but_unsigned(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    assert reason(unwrap(gateway, encrypted_only(team, TEXT_PART))) == "not-signed"
    inline = team.gpg.encrypt(TYPE1.encode(), [team.gateway_fingerprint]).encode()
    assert reason(unwrap(gateway, text_message(inline))) == "not-signed"


def test_plain_unsigned_text(gateway: tuple[GnuPG, str]) -> None:
    raw = text_message(TYPE1.encode())
    assert reason(unwrap(gateway, raw)) == "not-encrypted"
    assert reason(unwrap(gateway, raw, require_encryption=False)) == "not-signed"


def test_a_signed_entity_inside_a_signed_message(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    inner = multipart_signed(team.gpg, TEXT_PART, team.fingerprint)
    gw = team.gateway_fingerprint
    armored = team.gpg.sign_encrypt(inner, [gw], team.fingerprint)
    assert reason(unwrap(gateway, pgp_mime(armored))) == "multiple-signatures"
    inline = team.gpg.sign_encrypt(clearsign(team, TYPE1.encode()), [gw], team.fingerprint)
    assert reason(unwrap(gateway, text_message(inline.encode()))) == "multiple-signatures"


# --- refusals: decryption -------------------------------------------------------------


def test_ciphertext_to_another_key(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    armored = team.gpg.sign_encrypt(payload(), [team.fingerprint], team.fingerprint)
    assert reason(unwrap(gateway, pgp_mime(armored))) == "decrypt-failed"
    assert reason(unwrap(gateway, text_message(armored.encode()))) == "decrypt-failed"


def test_corrupted_ciphertext(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    armored = team.gpg.sign_encrypt(payload(), [team.gateway_fingerprint], team.fingerprint)
    lines = armored.splitlines()
    middle = len(lines) // 2
    lines[middle] = lines[middle][::-1]
    assert reason(unwrap(gateway, pgp_mime("\n".join(lines)))) == "decrypt-failed"


def test_decrypted_size_is_capped(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    raw = team.submit(TYPE1 + "#" * 50_000 + "\n")
    assert reason(unwrap(gateway, raw, max_decrypted_bytes=10_000)) == "too-large"
    capped = Unwrapper(GnuPG(gateway[0].home, max_output=10_000), Limits())
    assert reason(capped.unwrap(raw)) == "too-large"


def test_nested_ciphertext_is_not_decrypted(gateway: tuple[GnuPG, str], team: TeamClient) -> None:
    secret = b"Requests: 424242"
    nested_block = team.gpg.encrypt(secret, [team.gateway_fingerprint])
    for form in ("combined", "inline", "signed-then-encrypted"):
        u = accepted(unwrap(gateway, team.submit(TYPE1 + "\n" + nested_block, form=form)))
        body = u.entity.get_payload(decode=True)
        assert isinstance(body, bytes)
        assert nested_block.encode().replace(b"\n", b"") in body.replace(b"\r\n", b"").replace(
            b"\n", b""
        )
        assert secret not in body and secret not in u.signed_bytes
        only_good_signature_by(u, team.fingerprint)


def test_nested_encryption_packets_are_refused(
    gateway: tuple[GnuPG, str], team: TeamClient
) -> None:
    """An encrypted message whose packets (no literal) are another encrypted message."""
    to_gateway = ("--recipient", team.gateway_fingerprint, "--output", "-")
    signed = ("--local-user", team.fingerprint, "--sign", "--encrypt")
    inner = team_cli(team, *to_gateway, *signed, stdin=payload())
    outer = team_cli(
        team,
        *to_gateway,
        "--no-literal",
        "--compress-algo",
        "none",
        "--encrypt",
        "--armor",
        stdin=inner,
    )
    assert reason(unwrap(gateway, pgp_mime(outer.decode()))) == "decrypt-failed"
