"""What an encrypted message costs gpg, read from its packet headers before gpg runs.

In: the ciphertext found in a message (ASCII-armored or binary OpenPGP). Out: a
`Refusal` when it carries more key packets (PKESK or SKESK: each one addressed to the
gateway's key costs gpg-agent a private-key operation) or more encrypted data packets
(layers) than the configured limits, or when its framing is not an encrypted message at
all; None when gpg may have it. Pure: only the packet framing of RFC 4880 / RFC 9580
§4.2 is read (tag and length of each top-level packet); nothing is decrypted or
decompressed, and the encrypted data packet's body is skipped by its lengths.

Why: one 10 MB message of 76,000 random PKESK packets addressed to the gateway's subkey
held a gpg slot for about 95 s (one failed ECDH each). A message that a team's client
writes has one key packet per recipient key, a handful at most, and one encrypted data
packet. Packets nested inside the encryption cannot be seen here; gpg's time limit
(`[limits] gpg_timeout_seconds`) bounds those.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from contract.codes import Reason
from keys.shapes import Refusal

PKESK, SKESK, MARKER = 1, 3, 10
ENCRYPTED_DATA = frozenset({9, 18, 20})  # SED, SEIPD, OCB (AEAD) encrypted data
_ARMOR_BEGIN = re.compile(rb"-----BEGIN PGP MESSAGE-----[ \t]*\r?\n")
_ARMOR_END = re.compile(rb"^-----END PGP MESSAGE-----", re.M)
_MIN_PARTIAL_BUDGET = 1024  # partial-length chunks always allowed (see `_skip_partial`)


@dataclass(frozen=True)
class PacketLimits:
    max_key_packets: int = 16
    max_layers: int = 1


@dataclass(frozen=True)
class Census:
    """The top-level packets of an encrypted message, counted."""

    key_packets: int
    layers: int


class _Malformed(ValueError):
    """The bytes are not OpenPGP packets as RFC 4880 frames them."""


def inspect(ciphertext: bytes, limits: PacketLimits) -> Refusal | None:
    """A refusal if gpg should not be given `ciphertext`; None if it may."""
    try:
        census = count_packets(dearmor(ciphertext), limits)
    except _Malformed as exc:
        return Refusal(Reason.DECRYPT_FAILED, f"not an OpenPGP encrypted message: {exc}")
    if census.key_packets > limits.max_key_packets:
        return Refusal(
            Reason.TOO_MANY_PACKETS,
            f"more than {limits.max_key_packets} key packets (PKESK/SKESK); not decrypted",
        )
    if census.layers > limits.max_layers:
        return Refusal(
            Reason.TOO_MANY_PACKETS,
            f"{census.layers} encrypted data packets, more than {limits.max_layers}",
        )
    if census.layers == 0 or census.key_packets == 0:
        return Refusal(Reason.DECRYPT_FAILED, "no key packet or no encrypted data packet")
    return None


def dearmor(data: bytes) -> bytes:
    """The binary packets of an ASCII-armored PGP MESSAGE; binary input as it is."""
    begin = _ARMOR_BEGIN.search(data)
    if begin is None:
        if data.lstrip()[:1] == b"-":
            raise _Malformed("armor without a PGP MESSAGE header")
        return data
    end = _ARMOR_END.search(data, begin.end())
    if end is None:
        raise _Malformed("armor without its END line")
    lines = data[begin.end() : end.start()].splitlines()
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    body = lines[blank + 1 :] if blank is not None else lines  # after the armor headers
    # The last line may be the CRC24 ("=XXXX"); base64 itself never starts with "=".
    encoded = b"".join(line.strip() for line in body if not line.startswith(b"="))
    try:
        return binascii.a2b_base64(encoded, strict_mode=False)
    except binascii.Error as exc:
        raise _Malformed(f"armor is not base64 ({exc})") from None


def count_packets(data: bytes, limits: PacketLimits) -> Census:
    """Count key and encrypted data packets at the top level; stop once over a limit."""
    keys = layers = 0
    offset, partial_budget = 0, max(_MIN_PARTIAL_BUDGET, len(data) // 512)
    while offset < len(data):
        tag, offset, length, partial = _header(data, offset)
        if partial:
            if tag not in ENCRYPTED_DATA:
                raise _Malformed(f"partial body length on packet tag {tag}")
            offset, partial_budget = _skip_partial(data, offset, length, partial_budget)
        else:
            offset += length
        if offset > len(data):
            raise _Malformed(f"packet tag {tag} runs past the end")
        if tag in (PKESK, SKESK):
            keys += 1
        elif tag in ENCRYPTED_DATA:
            layers += 1
        elif tag != MARKER:
            raise _Malformed(f"packet tag {tag} at the top level of an encrypted message")
        if keys > limits.max_key_packets or layers > limits.max_layers:
            break
    return Census(keys, layers)


def split_first(data: bytes) -> tuple[bytes, bytes]:
    """The first packet of binary OpenPGP `data` (header and body, not partial) and the rest."""
    tag, body, length, partial = _header(data, 0)
    if partial or body + length > len(data):
        raise _Malformed(f"packet tag {tag} is not one whole packet")
    return data[: body + length], data[body + length :]


def _header(data: bytes, offset: int) -> tuple[int, int, int, bool]:
    """(tag, offset of the body, body length or first chunk, partial?) of one packet."""
    first = data[offset]
    if not first & 0x80:
        raise _Malformed(f"no packet header at byte {offset}")
    if first & 0x40:  # new format
        return first & 0x3F, *_new_length(data, offset + 1)
    tag, kind, at = (first >> 2) & 0x0F, first & 0x03, offset + 1
    if kind == 3:  # indeterminate: to the end of the data
        return tag, at, len(data) - at, False
    size = (1, 2, 4)[kind]
    if at + size > len(data):
        raise _Malformed("truncated packet header")
    return tag, at + size, int.from_bytes(data[at : at + size], "big"), False


def _new_length(data: bytes, at: int) -> tuple[int, int, bool]:
    """A new-format length at `at`: (offset after it, length, partial?)."""
    if at >= len(data):
        raise _Malformed("truncated packet header")
    first = data[at]
    if first < 192:
        return at + 1, first, False
    if first < 224:
        if at + 2 > len(data):
            raise _Malformed("truncated packet header")
        return at + 2, ((first - 192) << 8) + data[at + 1] + 192, False
    if first == 255:
        if at + 5 > len(data):
            raise _Malformed("truncated packet header")
        return at + 5, int.from_bytes(data[at + 1 : at + 5], "big"), False
    return at + 1, 1 << (first & 0x1F), True


def _skip_partial(data: bytes, offset: int, chunk: int, budget: int) -> tuple[int, int]:
    """Skip a body sent in partial-length chunks; the offset after it, the budget left.

    The number of chunks is bounded (one per 512 bytes of input, at least 1,024), so
    that a body of one-byte chunks cannot make this loop the stall it guards against.
    """
    partial = True
    while partial:
        budget -= 1
        if budget < 0:
            raise _Malformed("too many partial body chunks")
        offset += chunk
        if offset > len(data):
            raise _Malformed("partial body runs past the end")
        if offset == len(data):
            raise _Malformed("partial body without its last chunk")
        offset, chunk, partial = _new_length(data, offset)
    return offset + chunk, budget
