"""Seal outgoing mail: PGP/MIME (RFC 3156) signed and encrypted, headers protected.

In: a body (and attachments), the real headers, the recipient's fingerprint. Out: the
bytes of a complete RFC 5322 message whose outer header carries a neutral Subject and
whose encrypted payload carries the real one (RFC 9788, `hp="cipher"`, with `HP-Outer`
fields recording what the outer header shows; `protected-headers="v1"` too, for
Thunderbird and K-9).

Header values are refused if they hold CR, LF or NUL (header injection). The payload,
which carries the real headers, is built with the stdlib's strict SMTP policy, which
RFC 2047-encodes non-ASCII. The outer envelope carries only the addresses, the date,
the Message-ID and the neutral Subject.

Every reply goes through here, so the usual case is written directly: a text payload
whose header lines are printable ASCII that no policy would fold or encode (bare
addresses, a short Subject), and an envelope around it. Those bytes are the email
package's own for the same input (tests/keys/test_wrap.py checks it over generated
input), in a fifth of the time: 1.7 of the 9.2 ms of thread CPU each message cost went
into parsing and re-folding header objects. Anything else (attachments, non-ASCII, long
lines) takes the email package's path.
"""

from __future__ import annotations

import email.policy
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime

from keys.gpg import GnuPG

NEUTRAL_SUBJECT = "[...]"
PREAMBLE = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)"
_MAX_LINE = 78
_PAYLOAD_TYPE = 'text/plain; charset="utf-8"; hp="cipher"; protected-headers="v1"'
# What the fast paths write as it is: printable ASCII words with single spaces (no
# folding white space to collapse), and bare addresses (nothing to re-render).
_PRINTABLE = re.compile(r"[!-~]+(?: [!-~]+)*")
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_LINE_END = re.compile(r"\r\n|\r|\n")


class _HeaderClasses(HeaderRegistry):
    """The stdlib's header registry, keeping the class it makes for each header name.

    CPython's `HeaderRegistry.__getitem__` builds a new class with `type()` for every
    header it parses; a payload sets a dozen headers, once per mail sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


STRICT = email.policy.SMTP.clone(
    max_line_length=78, raise_on_defect=True, header_factory=_HeaderClasses()
)
OUTER = email.policy.compat32.clone(linesep="\r\n", max_line_length=78, raise_on_defect=True)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    subject: str
    date: datetime
    message_id: str
    in_reply_to: str | None = None


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError("header value contains a line break or NUL")
    return value


def _header_fields(env: Envelope) -> list[tuple[str, str]]:
    fields = [
        ("From", env.sender),
        ("To", env.recipient),
        ("Date", format_datetime(env.date)),
        ("Message-ID", env.message_id),
    ]
    if env.in_reply_to:
        fields.append(("In-Reply-To", env.in_reply_to))
    return [(name, _clean(value)) for name, value in fields]


def _as_written(fields: Sequence[tuple[str, str]]) -> list[str] | None:
    """The header lines, if every field is one no policy would fold, encode or re-render."""
    lines = []
    for name, value in fields:
        line = f"{name}: {value}"
        plain = _PRINTABLE.fullmatch(value) is not None and "=?" not in value
        if name in ("From", "To"):
            plain = _BARE_ADDRESS.fullmatch(value) is not None
        if not plain or len(line) > _MAX_LINE:
            return None
        lines.append(line)
    return lines


def _crlf(text: str) -> str:
    return _LINE_END.sub("\r\n", text)


def _plain_payload(env: Envelope, body: str) -> bytes | None:
    """`_strict_payload`'s bytes for a text-only payload; None if it must write them."""
    real = _header_fields(env)
    lines = _as_written(
        [
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("MIME-Version", "1.0"),
            ("Content-Type", _PAYLOAD_TYPE),
            *real,
            ("Subject", _clean(env.subject)),
            ("HP-Outer", f"Subject: {NEUTRAL_SUBJECT}"),
            *(("HP-Outer", f"{name}: {value}") for name, value in real),
        ]
    )
    if lines is None:
        return None
    # As the stdlib's contentmanager encodes a text body (email.contentmanager).
    normal = b"\n".join(body.encode("utf-8").splitlines()) + b"\n"
    text = quoprimime.body_encode(normal.decode("latin-1"), _MAX_LINE)
    return ("\r\n".join(lines) + "\r\n\r\n" + _crlf(text)).encode("ascii")


def _payload(body: str, attachments: Sequence[Attachment]) -> Message:
    text = EmailMessage(policy=STRICT)
    text.set_content(body, charset="utf-8", cte="quoted-printable")
    if not attachments:
        return text
    mixed = EmailMessage(policy=STRICT)
    mixed.make_mixed()
    mixed.attach(text)
    for att in attachments:
        maintype, _, subtype = att.content_type.partition("/")
        part = EmailMessage(policy=STRICT)
        part.set_content(
            att.data, maintype=maintype, subtype=subtype, filename=_clean(att.filename)
        )
        mixed.attach(part)
    return mixed


def protected_payload(env: Envelope, body: str, attachments: Sequence[Attachment] = ()) -> bytes:
    """The cryptographic payload: the real headers on its root part (RFC 9788)."""
    plain = None if attachments else _plain_payload(env, body)
    return plain if plain is not None else _strict_payload(env, body, attachments)


def _strict_payload(env: Envelope, body: str, attachments: Sequence[Attachment]) -> bytes:
    inner = _payload(body, attachments)
    inner.set_param("hp", "cipher")
    inner.set_param("protected-headers", "v1")
    for name, value in _header_fields(env):
        inner[name] = value
    inner["Subject"] = _clean(env.subject)
    inner["HP-Outer"] = f"Subject: {NEUTRAL_SUBJECT}"
    for name, value in _header_fields(env):
        inner["HP-Outer"] = f"{name}: {value}"
    return inner.as_bytes(policy=STRICT)


def encrypted_envelope(
    fields: Sequence[tuple[str, str]], armored: str, boundary: str | None = None
) -> bytes:
    """An RFC 3156 multipart/encrypted message around an armored OpenPGP message."""
    boundary = boundary or _boundary(armored)
    lines = _as_written(fields)
    if lines is None:
        return _envelope_by_package(fields, armored, boundary)
    head = [
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";',
        f' boundary="{boundary}"',
        "MIME-Version: 1.0",
        *lines,
        "",
        PREAMBLE,
        f"--{boundary}",
        "Content-Type: application/pgp-encrypted",
        "MIME-Version: 1.0",
        "Content-Transfer-Encoding: 7bit",
        "Content-Description: PGP/MIME version identification",
        "",
        "Version: 1",
        "",
        f"--{boundary}",
        'Content-Type: application/octet-stream; name="encrypted.asc"',
        "MIME-Version: 1.0",
        "Content-Description: OpenPGP encrypted message",
        'Content-Disposition: inline; filename="encrypted.asc"',
        "",
    ]
    text = "\r\n".join(head) + "\r\n" + _crlf(armored) + f"\r\n--{boundary}--\r\n"
    return text.encode("ascii")


def _boundary(armored: str) -> str:
    """A boundary in the stdlib's style that the armored text does not contain."""
    while True:
        boundary = f"{'=' * 15}{secrets.randbelow(10**19):019d}=="
        if f"--{boundary}" not in armored:
            return boundary


def _envelope_by_package(fields: Sequence[tuple[str, str]], armored: str, boundary: str) -> bytes:
    # compat32 would RFC 2047-encode a non-ASCII field whole, address and all.
    policy = OUTER if all(value.isascii() for _, value in fields) else STRICT
    outer = MIMEMultipart("encrypted", protocol="application/pgp-encrypted", policy=policy)
    for name, value in fields:
        outer[name] = _clean(value)
    control = MIMEApplication(b"Version: 1\r\n", "pgp-encrypted", policy=policy)
    control.replace_header("Content-Transfer-Encoding", "7bit")
    control.set_payload("Version: 1\r\n")
    control["Content-Description"] = "PGP/MIME version identification"
    data = MIMEBase("application", "octet-stream", name="encrypted.asc", policy=policy)
    data["Content-Description"] = "OpenPGP encrypted message"
    data["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    data.set_payload(armored)
    outer.attach(control)
    outer.attach(data)
    outer.preamble = PREAMBLE
    outer.set_boundary(boundary)
    return outer.as_bytes(policy=policy)


def seal(
    gpg: GnuPG,
    env: Envelope,
    body: str,
    *,
    recipient_fingerprints: Sequence[str],
    signer: str,
    passphrase: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """Sign with `signer` and encrypt to the recipient's key(s), headers protected."""
    payload = protected_payload(env, body, attachments)
    armored = gpg.sign_encrypt(payload, list(recipient_fingerprints), signer, passphrase)
    fields = [*_header_fields(env), ("Subject", NEUTRAL_SUBJECT)]
    return encrypted_envelope(fields, armored)
