"""Where a message keeps its OpenPGP parts: the shapes the unwrap accepts, found in MIME.

In: a parsed message (keys/mimeparse.py). Out: what its root holds (`Sealed`
ciphertext, a `Detached` multipart/signed, a `Cleartext` signed body) or a `Refusal`
with a stable reason code. Nothing here runs gpg: `keys/unwrap.py` hands what was found
to it. The MIME tree is bounded (`Limits`, depth and part count) before anything walks
it, and a shape that mail clients and this parser might read differently is refused
rather than guessed.
"""

from __future__ import annotations

import email.message
import re
from dataclasses import dataclass
from email.utils import getaddresses

from contract.codes import Reason
from keys.mimeparse import parse_bytes

ARMOR_MESSAGE = re.compile(rb"-----BEGIN PGP MESSAGE-----.*?-----END PGP MESSAGE-----", re.S)


ARMOR_SIGNED = re.compile(
    rb"-----BEGIN PGP SIGNED MESSAGE-----.*?-----END PGP SIGNATURE-----", re.S
)


ANY_ARMOR = re.compile(rb"-----BEGIN PGP (MESSAGE|SIGNED MESSAGE|SIGNATURE)-----")


BARE_LF = re.compile(rb"(?<!\r)\n")  # a line feed not already part of a CRLF


_BLANK = re.compile(rb"\s*")  # what bytes.strip() removes: space, \t, \n, \r, \f, \v


@dataclass(frozen=True)
class Limits:
    max_mime_depth: int = 16
    max_mime_parts: int = 200
    max_decrypted_bytes: int = 26_214_400


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    detail: str  # for the admin's eyes only


@dataclass
class Sealed:
    """Ciphertext found in the outer message, held only until gpg has it."""

    ciphertext: bytes | None
    mime: bool  # PGP/MIME (the plaintext is a MIME entity), else inline PGP

    def take(self) -> bytes:
        """The ciphertext, let go of here: gpg's copy is the last one, gone when it is done."""
        ciphertext, self.ciphertext = self.ciphertext, None
        if ciphertext is None:
            raise RuntimeError("the ciphertext was already handed to gpg")
        return ciphertext


@dataclass(frozen=True)
class Detached:
    """A multipart/signed entity taken apart: the signed part, exactly, and its signature."""

    signed: bytes
    signature: bytes


@dataclass(frozen=True)
class Cleartext:
    """A text/plain body, which must be exactly one cleartext-signed block."""

    text: bytes


Found = Sealed | Detached | Cleartext  # what the outer message holds


def parse(raw: bytes) -> email.message.Message:
    return parse_bytes(raw)


def check_shape(msg: email.message.Message, limits: Limits) -> Refusal | None:
    """Bound the MIME tree (depth and part count) before anything walks it."""
    stack: list[tuple[email.message.Message, int, frozenset[str]]] = [(msg, 1, frozenset())]
    parts = 0
    while stack:
        part, depth, boundaries = stack.pop()
        parts += 1
        if depth > limits.max_mime_depth:
            return Refusal(
                Reason.MALFORMED_MIME, f"MIME nesting deeper than {limits.max_mime_depth}"
            )
        if parts > limits.max_mime_parts:
            return Refusal(Reason.MALFORMED_MIME, f"more than {limits.max_mime_parts} MIME parts")
        if part.get_content_maintype() == "multipart":
            # A multipart without parts (boundary missing or never found), or one reusing
            # an enclosing boundary, is ambiguous: mail clients and this parser may
            # disagree on what is inside what, so it is refused rather than guessed.
            boundary = part.get_boundary()
            if boundary is None or not part.is_multipart():
                return Refusal(Reason.MALFORMED_MIME, "a multipart whose boundary is missing")
            if boundary in boundaries:
                return Refusal(
                    Reason.MALFORMED_MIME, "a nested multipart reuses its parent's boundary"
                )
            boundaries = boundaries | {boundary}
        stack.extend((p, depth + 1, boundaries) for p in subparts(part))
    return None


def addresses(msg: email.message.Message, header: str) -> tuple[str, ...]:
    values = [str(v) for v in msg.get_all(header, [])]
    return tuple(addr.lower() for _, addr in getaddresses(values) if addr)


def subparts(msg: email.message.Message) -> list[email.message.Message]:
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, email.message.Message)]


def body_bytes(part: email.message.Message) -> bytes:
    body = part.get_payload(decode=True)
    return body if isinstance(body, bytes) else b""


def only_armor(body: bytes, pattern: re.Pattern[bytes]) -> bytes | None | Refusal:
    """The one armored block that is the whole body; None if there is none."""
    found = list(pattern.finditer(body))
    if not found:
        return None
    if len(found) > 1:
        return Refusal(Reason.PARTIALLY_SIGNED, "more than one armored block in the body")
    match = found[0]
    # Matched in place: slicing and stripping would copy a body of megabytes twice.
    if not _BLANK.fullmatch(body, 0, match.start()) or not _BLANK.fullmatch(body, match.end()):
        return Refusal(Reason.PARTIALLY_SIGNED, "unprotected text around the armored block")
    return match.group(0)


def contains_pgp(msg: email.message.Message) -> bool:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("multipart/encrypted", "multipart/signed", "application/pgp-signature"):
            return True
        if not part.is_multipart() and ANY_ARMOR.search(body_bytes(part)):
            return True
    return False


def pgp_mime_ciphertext(msg: email.message.Message) -> bytes | Refusal:
    parts = subparts(msg)
    if len(parts) != 2:
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted without exactly two parts")
    control, data = parts
    if control.get_content_type() != "application/pgp-encrypted":
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted without pgp-encrypted control")
    if data.get_content_type() != "application/octet-stream":
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted data part is not octet-stream")
    return body_bytes(data)


def signed_content(data: bytes, msg: email.message.Message) -> Detached | Cleartext | Refusal:
    """What is signed in `msg` (parsed from `data`), taken out; a refusal if nothing is."""
    ctype = msg.get_content_type()
    if ctype == "multipart/signed":
        return multipart_signed_halves(msg, data)
    if ctype == "text/plain" and not msg.is_multipart():
        return Cleartext(body_bytes(msg))
    if contains_pgp(msg):
        return Refusal(Reason.PARTIALLY_SIGNED, "the signature does not cover the whole content")
    return Refusal(Reason.NOT_SIGNED, "no signature over the content")


def multipart_signed_halves(msg: email.message.Message, entity: bytes) -> Detached | Refusal:
    """Split a multipart/signed entity (`msg`, parsed from `entity`) exactly in two.

    The signed part is taken from the bytes, not re-serialised, and canonicalised to CRLF
    as RFC 3156 §5 requires of the signer. Found by position: the entity is copied only
    where it has bare line feeds, and only the signed part is cut out of it.
    """
    boundary = msg.get_boundary()
    parts = subparts(msg)
    if not boundary or len(parts) != 2:
        return Refusal(Reason.MALFORMED_MIME, "multipart/signed without exactly two parts")
    if parts[1].get_content_type() != "application/pgp-signature":
        return Refusal(
            Reason.MALFORMED_MIME, "multipart/signed whose second part is not a signature"
        )
    if str(msg.get_param("protocol", "")).lower() != "application/pgp-signature":
        return Refusal(Reason.MALFORMED_MIME, "multipart/signed with another protocol")
    crlf = BARE_LF.sub(b"\r\n", entity)
    delimiter = b"\r\n--" + boundary.encode("ascii", "replace")
    # Exactly three delimiters: headers and preamble, part 1, part 2, "--" and epilogue.
    first = crlf.find(delimiter) + len(delimiter)
    second = crlf.find(delimiter, first)
    third = crlf.find(delimiter, second + len(delimiter))
    if crlf.count(delimiter) != 3 or not crlf.startswith(b"--", third + len(delimiter)):
        return Refusal(
            Reason.MALFORMED_MIME, "multipart/signed boundaries do not delimit two parts"
        )
    line_end = crlf.find(b"\r\n", first, second)  # the end of the first boundary line
    if line_end < 0 or not _BLANK.fullmatch(crlf, first, line_end):
        return Refusal(Reason.MALFORMED_MIME, "multipart/signed boundary line malformed")
    return Detached(crlf[line_end + 2 : second], body_bytes(parts[1]))
