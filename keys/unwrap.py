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
ciphertext). Ciphertext with more key packets or layers than `PacketLimits` allow is
refused from its packet headers before gpg sees it (`keys/packets.py`), and a gpg
process stopped at its time limit is `gpg-timeout`. Whether the signature is acceptable
is decided in `keys/policy.py`.

Messages of 10 MiB pass through here, two at a time: each step hands the next only what it
found (the ciphertext, the signed part), so the raw bytes, the ciphertext and every parse
are let go of as soon as they have served, and nothing is parsed twice.
"""

from __future__ import annotations

import email.message
import hashlib
from dataclasses import dataclass

from contract.codes import Reason
from keys.gpg import GnuPG
from keys.gpg_status import KEY_PACKETS, CryptoResult
from keys.headers import HeaderLimits, header_refusal
from keys.packets import PacketLimits, inspect
from keys.shapes import (
    ANY_ARMOR,
    ARMOR_MESSAGE,
    ARMOR_SIGNED,
    Cleartext,
    Detached,
    Found,
    Limits,
    Refusal,
    Sealed,
    addresses,
    body_bytes,
    check_shape,
    contains_pgp,
    only_armor,
    parse,
    pgp_mime_ciphertext,
    signed_content,
)
from keys.textentity import text_entity


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


class Unwrapper:
    """Runs the unwrap for one message against one GnuPG home."""

    def __init__(
        self,
        gpg: GnuPG,
        limits: Limits,
        *,
        require_encryption: bool = True,
        passphrase: str | None = None,
        packets: PacketLimits | None = None,
        headers: HeaderLimits | None = None,
    ) -> None:
        self.gpg = gpg
        self.limits = limits
        self.packets = packets or PacketLimits()
        self.headers = headers or HeaderLimits()
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
            if isinstance(found, Sealed):
                return self._decrypted(found, outer_from)
            return self._verified(found, outer_from, encrypted=False)
        except (RecursionError, LookupError, ValueError, TypeError, AttributeError) as exc:
            return Refusal(Reason.MALFORMED_MIME, f"unparseable MIME: {type(exc).__name__}")

    def _outer(self, raw: bytes) -> tuple[Found, tuple[str, ...]] | Refusal:
        """What the outer message holds, and its From addresses; its parse ends here."""
        refusal = header_refusal(raw, self.headers)  # before the parser holds each line
        if refusal:
            return refusal
        msg = parse(raw)
        refusal = check_shape(msg, self.limits)
        if refusal:
            return refusal
        outer_from = addresses(msg, "From")
        found = self._outer_content(raw, msg)
        return found if isinstance(found, Refusal) else (found, outer_from)

    def _outer_content(self, raw: bytes, msg: email.message.Message) -> Found | Refusal:
        ctype = msg.get_content_type()
        if ctype == "multipart/encrypted":
            ciphertext = pgp_mime_ciphertext(msg)
            if isinstance(ciphertext, Refusal):
                return ciphertext
            return Sealed(ciphertext, mime=True)
        if ctype == "text/plain" and not msg.is_multipart():
            block = only_armor(body_bytes(msg), ARMOR_MESSAGE)
            if isinstance(block, Refusal):
                return block
            if block is not None:
                return Sealed(block, mime=False)
        if self.require_encryption:
            if contains_pgp(msg) and ctype not in ("multipart/signed", "text/plain"):
                return Refusal(Reason.PARTIALLY_SIGNED, "OpenPGP content not at the message root")
            return Refusal(Reason.NOT_ENCRYPTED, "message is not encrypted to the gateway")
        return signed_content(raw, msg)

    def _decrypted(self, sealed: Sealed, outer_from: tuple[str, ...]) -> Unwrapped | Refusal:
        result = self._decrypt(sealed.take())
        if isinstance(result, Refusal):
            return result
        refusal = self._not_one_clean_layer(result)
        if refusal:
            return refusal
        if result.signatures:
            return self._combined(result, outer_from, mime=sealed.mime)
        if not sealed.mime:
            return self._verified(Cleartext(result.data), outer_from, encrypted=True)
        content = self._signed_plaintext(result.data)
        del result  # of the plaintext, only what was signed in it is needed now
        return self._verified(content, outer_from, encrypted=True)

    def _decrypt(self, ciphertext: bytes) -> CryptoResult | Refusal:
        """gpg's decryption, unless the packet headers show it would cost too much."""
        limit = self.packets.max_key_packets  # key packets inside the encryption, too
        refusal = inspect(ciphertext, self.packets)
        return refusal or self.gpg.decrypt(ciphertext, self.passphrase, max_key_packets=limit)

    def _not_one_clean_layer(self, result: CryptoResult) -> Refusal | None:
        """Why the decryption did not cleanly remove one layer, if it did not."""
        if result.stopped == KEY_PACKETS:
            return Refusal(Reason.TOO_MANY_PACKETS, "key packets inside the encryption")
        if result.stopped:
            return _timed_out()
        if result.output_limited or len(result.data) >= self.limits.max_decrypted_bytes:
            return Refusal(Reason.TOO_LARGE, "decrypted content reached the size cap")
        if not result.decrypted or result.problems or result.plaintext_packets != 1:
            detail = "; ".join(result.problems) or "no clean single-packet decryption"
            return Refusal(Reason.DECRYPT_FAILED, detail)
        if result.returncode != 0 and all(s.outcome == "good" for s in result.signatures):
            return Refusal(Reason.DECRYPT_FAILED, f"gpg exit status {result.returncode}")
        return None

    def _signed_plaintext(self, data: bytes) -> Detached | Cleartext | Refusal:
        """What is signed in a decrypted MIME entity; its parse ends here."""
        inner = parse(data)
        return check_shape(inner, self.limits) or signed_content(data, inner)

    def _combined(
        self, result: CryptoResult, outer_from: tuple[str, ...], *, mime: bool
    ) -> Unwrapped | Refusal:
        if mime:
            entity = parse(result.data)
            refusal = check_shape(entity, self.limits)
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
        content: Detached | Cleartext | Refusal,
        outer_from: tuple[str, ...],
        *,
        encrypted: bool,
    ) -> Unwrapped | Refusal:
        if isinstance(content, Refusal):
            return content
        if isinstance(content, Cleartext):
            return self._inline_signed(content.text, outer_from, encrypted=encrypted)
        signed = content.signed
        result = self.gpg.verify_detached(signed, content.signature)
        if result.stopped:
            return _timed_out()
        return _result(parse(signed), signed, result, outer_from, encrypted=encrypted)

    def _inline_signed(
        self, text: bytes, outer_from: tuple[str, ...], *, encrypted: bool
    ) -> Unwrapped | Refusal:
        block = only_armor(text, ARMOR_SIGNED)
        if isinstance(block, Refusal):
            return block
        if block is None:
            if ANY_ARMOR.search(text):
                return Refusal(Reason.PARTIALLY_SIGNED, "OpenPGP block inside unsigned text")
            return Refusal(Reason.NOT_SIGNED, "no signature over the content")
        result = self.gpg.verify_clearsigned(block)
        if result.stopped:
            return _timed_out()
        return _result(
            text_entity(result.data), result.data, result, outer_from, encrypted=encrypted
        )


def _timed_out() -> Refusal:
    return Refusal(Reason.GPG_TIMEOUT, "gpg did not finish within its time limit")


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
        protected_from=addresses(entity, "From"),
        protected_to=addresses(entity, "To") if has_to else None,
    )
