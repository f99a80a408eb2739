"""Build a team's submission the way a mail client would (the team side of the wire).

In: report text, the team's own GnuPG home (its secret key, the gateway's public key).
Out: RFC 5322 bytes in one of the three accepted shapes: PGP/MIME combined
sign+encrypt, PGP/MIME encrypting a multipart/signed (RFC 3156 §6.1), or inline PGP.
Used by `clearinghouse demo`, by the tests, and by teams that submit from cron; `open_sealed`
reads the gateway's replies the way the team's mail client would.
"""

from __future__ import annotations

import email
import email.policy
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from keys.gpg import GnuPG
from keys.gpg_status import CryptoResult
from keys.wrap import Envelope, encrypted_envelope, new_message_id, protected_payload

FORMS = ("combined", "signed-then-encrypted", "inline")


def _envelope(sender: str, to: str, subject: str) -> Envelope:
    domain = sender.rpartition("@")[2] or "localhost"
    return Envelope(sender, to, subject, datetime.now(UTC), new_message_id(domain))


def multipart_signed(
    gpg: GnuPG, content: bytes, signer: str, passphrase: str | None = None
) -> bytes:
    """A multipart/signed entity over `content` (a MIME entity, canonicalised to CRLF)."""
    content = content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")
    signature = gpg.sign_detached(content, signer, passphrase).encode("ascii")
    boundary = "sig-" + secrets.token_hex(12)
    head = (
        f'Content-Type: multipart/signed; micalg="pgp-sha512";\r\n'
        f' protocol="application/pgp-signature"; boundary="{boundary}"\r\n\r\n'
    )
    return (
        head.encode()
        + f"--{boundary}\r\n".encode()
        + content
        + f"\r\n--{boundary}\r\n".encode()
        + b'Content-Type: application/pgp-signature; name="signature.asc"\r\n\r\n'
        + signature
        + f"\r\n--{boundary}--\r\n".encode()
    )


def compose(
    gpg: GnuPG,
    report: str,
    *,
    signer: str,
    recipients: Sequence[str],
    sender: str,
    to: str,
    subject: str = "Monthly statistics",
    form: str = "combined",
    passphrase: str | None = None,
) -> bytes:
    """A ready-to-send submission, signed by `signer`, encrypted to `recipients`.

    `passphrase` unlocks the signing key when no gpg-agent holds it (a cron job).
    """
    env = _envelope(sender, to, subject)
    outer_fields = [
        ("From", sender),
        ("To", to),
        ("Subject", "[...]"),
        ("Message-ID", env.message_id),
        ("Date", format_datetime(env.date)),
    ]
    if form == "inline":
        armored = gpg.sign_encrypt(report.encode("utf-8"), list(recipients), signer, passphrase)
        msg = EmailMessage(policy=email.policy.SMTP)
        for name, value in outer_fields:
            msg[name] = value
        msg.set_content(armored, cte="7bit")
        return msg.as_bytes()
    payload = protected_payload(env, report)
    if form == "combined":
        armored = gpg.sign_encrypt(payload, list(recipients), signer, passphrase)
    elif form == "signed-then-encrypted":
        signed = multipart_signed(gpg, payload, signer, passphrase)
        armored = gpg.encrypt(signed, list(recipients))
    else:
        raise ValueError(f"unknown form {form!r}; one of {', '.join(FORMS)}")
    return encrypted_envelope(outer_fields, armored)


def open_sealed(gpg: GnuPG, raw: bytes) -> CryptoResult:
    """Decrypt and verify a PGP/MIME (RFC 3156) message with the recipient's keyring."""
    msg = email.message_from_bytes(raw)
    data = [p for p in msg.walk() if p.get_content_type() == "application/octet-stream"]
    if msg.get_content_type() != "multipart/encrypted" or len(data) != 1:
        raise ValueError("not an RFC 3156 multipart/encrypted message")
    ciphertext = data[0].get_payload(decode=True)
    return gpg.decrypt(ciphertext if isinstance(ciphertext, bytes) else b"")
