"""Unwrap one incoming message: remove one encryption layer, find the one signed entity.

In: the raw RFC 5322 bytes. Out: an `Unwrapped` (the signed entity, the bytes that were
signed, GnuPG's facts about the signature) or a `Refusal` with a stable reason code.

Accepted shapes (RFC 3156 and inline PGP), nothing else:
- multipart/encrypted whose plaintext is signed by the same OpenPGP message (combined);
- multipart/encrypted whose plaintext is a multipart/signed at its root (RFC 3156 §6.1);
- a text/plain body that is exactly one armored PGP MESSAGE (inline), combined-signed or
  holding exactly one cleartext-signed block;
- with `require_encryption = false` only: a multipart/signed root or a cleartext-signed
  body.
Anything unsigned beside or around the signed entity is `partially-signed`. Ciphertext
found inside the plaintext is never decrypted (no decryption oracle for nested
ciphertext). Whether the signature is acceptable is decided in `keys/policy.py`.

Messages of 10 MiB pass through here, two at a time: each step hands the next only what it
found (the ciphertext, the signed part), so the raw bytes, the ciphertext and every parse
are let go of as soon as they have served, and nothing is parsed twice.
"""

from __future__ import annotations

import email.message
import hashlib
import re
from dataclasses import dataclass
from email.utils import getaddresses

from contract.codes import Reason
from keys.gpg import CryptoResult, GnuPG
from keys.mimeparse import parse_bytes
from keys.textentity import text_entity

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


@dataclass(frozen=True)
class Unwrapped:
    entity: email.message.Message  # the signed entity, the root of what was signed
    signed_bytes: bytes  # exactly what the signature covers
    verification: CryptoResult  # GnuPG's facts about the signature(s)
    encrypted: bool
    outer_from: tuple[str, ...]  # addresses in the outer From header(s)
    protected_from: tuple[str, ...]  # From inside the signed entity (RFC 9788), if any
    protected_to: tuple[str, ...] | None  # To inside the signed entity, None if absent

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.signed_bytes).hexdigest()


@dataclass
class _Sealed:
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
class _Detached:
    """A multipart/signed entity taken apart: the signed part, exactly, and its signature."""

    signed: bytes
    signature: bytes


@dataclass(frozen=True)
class _Cleartext:
    """A text/plain body, which must be exactly one cleartext-signed block."""

    text: bytes


_Found = _Sealed | _Detached | _Cleartext  # what the outer message holds


def _parse(raw: bytes) -> email.message.Message:
    return parse_bytes(raw)


def _check_shape(msg: email.message.Message, limits: Limits) -> Refusal | None:
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
        stack.extend((p, depth + 1, boundaries) for p in _subparts(part))
    return None


def _addresses(msg: email.message.Message, header: str) -> tuple[str, ...]:
    values = [str(v) for v in msg.get_all(header, [])]
    return tuple(addr.lower() for _, addr in getaddresses(values) if addr)


def _subparts(msg: email.message.Message) -> list[email.message.Message]:
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, email.message.Message)]


def _body_bytes(part: email.message.Message) -> bytes:
    body = part.get_payload(decode=True)
    return body if isinstance(body, bytes) else b""


def _only_armor(body: bytes, pattern: re.Pattern[bytes]) -> bytes | None | Refusal:
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


def _contains_pgp(msg: email.message.Message) -> bool:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("multipart/encrypted", "multipart/signed", "application/pgp-signature"):
            return True
        if not part.is_multipart() and ANY_ARMOR.search(_body_bytes(part)):
            return True
    return False


def _pgp_mime_ciphertext(msg: email.message.Message) -> bytes | Refusal:
    parts = _subparts(msg)
    if len(parts) != 2:
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted without exactly two parts")
    control, data = parts
    if control.get_content_type() != "application/pgp-encrypted":
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted without pgp-encrypted control")
    if data.get_content_type() != "application/octet-stream":
        return Refusal(Reason.MALFORMED_MIME, "multipart/encrypted data part is not octet-stream")
    return _body_bytes(data)


def _signed_content(data: bytes, msg: email.message.Message) -> _Detached | _Cleartext | Refusal:
    """What is signed in `msg` (parsed from `data`), taken out; a refusal if nothing is."""
    ctype = msg.get_content_type()
    if ctype == "multipart/signed":
        return _multipart_signed_halves(msg, data)
    if ctype == "text/plain" and not msg.is_multipart():
        return _Cleartext(_body_bytes(msg))
    if _contains_pgp(msg):
        return Refusal(Reason.PARTIALLY_SIGNED, "the signature does not cover the whole content")
    return Refusal(Reason.NOT_SIGNED, "no signature over the content")


def _multipart_signed_halves(msg: email.message.Message, entity: bytes) -> _Detached | Refusal:
    """Split a multipart/signed entity (`msg`, parsed from `entity`) exactly in two.

    The signed part is taken from the bytes, not re-serialised, and canonicalised to CRLF
    as RFC 3156 §5 requires of the signer. Found by position: the entity is copied only
    where it has bare line feeds, and only the signed part is cut out of it.
    """
    boundary = msg.get_boundary()
    parts = _subparts(msg)
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
    return _Detached(crlf[line_end + 2 : second], _body_bytes(parts[1]))


class Unwrapper:
    """Runs the unwrap for one message against one GnuPG home."""

    def __init__(
        self,
        gpg: GnuPG,
        limits: Limits,
        *,
        require_encryption: bool = True,
        passphrase: str | None = None,
    ) -> None:
        self.gpg = gpg
        self.limits = limits
        self.require_encryption = require_encryption
        self.passphrase = passphrase  # of the gateway key, when an adopted key has one

    def unwrap(self, raw: bytes) -> Unwrapped | Refusal:
        try:
            outer = self._outer(raw)
            # From here on only what was found in it is needed: when the caller has not
            # kept the raw bytes either, they go now rather than after gpg and parsing.
            del raw
            if isinstance(outer, Refusal):
                return outer
            found, outer_from = outer
            if isinstance(found, _Sealed):
                return self._decrypted(found, outer_from)
            return self._verified(found, outer_from, encrypted=False)
        except (RecursionError, LookupError, ValueError, TypeError, AttributeError) as exc:
            return Refusal(Reason.MALFORMED_MIME, f"unparseable MIME: {type(exc).__name__}")

    def _outer(self, raw: bytes) -> tuple[_Found, tuple[str, ...]] | Refusal:
        """What the outer message holds, and its From addresses; its parse ends here."""
        msg = _parse(raw)
        refusal = _check_shape(msg, self.limits)
        if refusal:
            return refusal
        outer_from = _addresses(msg, "From")
        found = self._outer_content(raw, msg)
        return found if isinstance(found, Refusal) else (found, outer_from)

    def _outer_content(self, raw: bytes, msg: email.message.Message) -> _Found | Refusal:
        ctype = msg.get_content_type()
        if ctype == "multipart/encrypted":
            ciphertext = _pgp_mime_ciphertext(msg)
            if isinstance(ciphertext, Refusal):
                return ciphertext
            return _Sealed(ciphertext, mime=True)
        if ctype == "text/plain" and not msg.is_multipart():
            block = _only_armor(_body_bytes(msg), ARMOR_MESSAGE)
            if isinstance(block, Refusal):
                return block
            if block is not None:
                return _Sealed(block, mime=False)
        if self.require_encryption:
            if _contains_pgp(msg) and ctype not in ("multipart/signed", "text/plain"):
                return Refusal(Reason.PARTIALLY_SIGNED, "OpenPGP content not at the message root")
            return Refusal(Reason.NOT_ENCRYPTED, "message is not encrypted to the gateway")
        return _signed_content(raw, msg)

    def _decrypted(self, sealed: _Sealed, outer_from: tuple[str, ...]) -> Unwrapped | Refusal:
        result = self.gpg.decrypt(sealed.take(), self.passphrase)
        refusal = self._not_one_clean_layer(result)
        if refusal:
            return refusal
        if result.signatures:
            return self._combined(result, outer_from, mime=sealed.mime)
        if not sealed.mime:
            return self._verified(_Cleartext(result.data), outer_from, encrypted=True)
        content = self._signed_plaintext(result.data)
        del result  # of the plaintext, only what was signed in it is needed now
        return self._verified(content, outer_from, encrypted=True)

    def _not_one_clean_layer(self, result: CryptoResult) -> Refusal | None:
        """Why the decryption did not cleanly remove one layer, if it did not."""
        if result.output_limited or len(result.data) >= self.limits.max_decrypted_bytes:
            return Refusal(Reason.TOO_LARGE, "decrypted content reached the size cap")
        if not result.decrypted or result.problems or result.plaintext_packets != 1:
            detail = "; ".join(result.problems) or "no clean single-packet decryption"
            return Refusal(Reason.DECRYPT_FAILED, detail)
        if result.returncode != 0 and all(s.outcome == "good" for s in result.signatures):
            return Refusal(Reason.DECRYPT_FAILED, f"gpg exit status {result.returncode}")
        return None

    def _signed_plaintext(self, data: bytes) -> _Detached | _Cleartext | Refusal:
        """What is signed in a decrypted MIME entity; its parse ends here."""
        inner = _parse(data)
        return _check_shape(inner, self.limits) or _signed_content(data, inner)

    def _combined(
        self, result: CryptoResult, outer_from: tuple[str, ...], *, mime: bool
    ) -> Unwrapped | Refusal:
        if mime:
            entity = _parse(result.data)
            refusal = _check_shape(entity, self.limits)
            if refusal:
                return refusal
            if entity.get_content_type() == "multipart/signed":
                return Refusal(
                    Reason.MULTIPLE_SIGNATURES, "a signed entity inside a signed message"
                )
        else:
            if ARMOR_SIGNED.search(result.data):
                return Refusal(Reason.MULTIPLE_SIGNATURES, "a signed block inside a signed message")
            entity = text_entity(result.data)
        return _result(entity, result.data, result, outer_from, encrypted=True)

    def _verified(
        self,
        content: _Detached | _Cleartext | Refusal,
        outer_from: tuple[str, ...],
        *,
        encrypted: bool,
    ) -> Unwrapped | Refusal:
        if isinstance(content, Refusal):
            return content
        if isinstance(content, _Cleartext):
            return self._inline_signed(content.text, outer_from, encrypted=encrypted)
        signed = content.signed
        result = self.gpg.verify_detached(signed, content.signature)
        return _result(_parse(signed), signed, result, outer_from, encrypted=encrypted)

    def _inline_signed(
        self, text: bytes, outer_from: tuple[str, ...], *, encrypted: bool
    ) -> Unwrapped | Refusal:
        block = _only_armor(text, ARMOR_SIGNED)
        if isinstance(block, Refusal):
            return block
        if block is None:
            if ANY_ARMOR.search(text):
                return Refusal(Reason.PARTIALLY_SIGNED, "OpenPGP block inside unsigned text")
            return Refusal(Reason.NOT_SIGNED, "no signature over the content")
        result = self.gpg.verify_clearsigned(block)
        return _result(
            text_entity(result.data), result.data, result, outer_from, encrypted=encrypted
        )


def _result(
    entity: email.message.Message,
    signed: bytes,
    verification: CryptoResult,
    outer_from: tuple[str, ...],
    *,
    encrypted: bool,
) -> Unwrapped:
    has_to = entity.get("To") is not None
    return Unwrapped(
        entity=entity,
        signed_bytes=signed,
        verification=verification,
        encrypted=encrypted,
        outer_from=outer_from,
        protected_from=_addresses(entity, "From"),
        protected_to=_addresses(entity, "To") if has_to else None,
    )
