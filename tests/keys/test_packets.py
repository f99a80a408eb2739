"""Counting an encrypted message's packets from their headers (keys/packets.py).

Real messages come from gpg (a fresh key per test); the hostile ones are assembled
packet by packet, in both header formats of RFC 4880 §4.2 and with partial lengths.
"""

from __future__ import annotations

import base64
import os

import pytest

from contract.codes import Reason
from keys.gpg import GnuPG
from keys.packets import PacketLimits, count_packets, dearmor, inspect

LIMITS = PacketLimits(max_key_packets=4, max_layers=1)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """(binary, armored) of one message gpg encrypted to two recipients."""
    gpg = GnuPG(tmp_path_factory.mktemp("packets"))
    fprs = [gpg.generate_key(f"R{i}", f"r{i}@x.example") for i in range(2)]
    armored = gpg.encrypt(b"figures", fprs)
    return dearmor(armored.encode()), armored


def pkesk() -> bytes:
    body = bytes([3]) + os.urandom(8) + bytes([18]) + os.urandom(40)
    return bytes([0xC1, len(body)]) + body


def old_format(tag: int, body: bytes) -> bytes:
    """An old-format packet with a two-octet length."""
    return bytes([0x80 | (tag << 2) | 1]) + len(body).to_bytes(2, "big") + body


def partial(tag: int, body: bytes, chunk_power: int = 9) -> bytes:
    """A new-format packet whose body is sent in partial chunks of 2**chunk_power bytes."""
    chunk = 1 << chunk_power
    out = bytearray([0xC0 | tag])
    rest = body
    while len(rest) > chunk:
        out += bytes([224 + chunk_power]) + rest[:chunk]
        rest = rest[chunk:]
    out += (
        bytes([len(rest)]) + rest
        if len(rest) < 192
        else bytes([255]) + len(rest).to_bytes(4, "big") + rest
    )
    return bytes(out)


def test_a_real_message_passes_and_is_counted(real: tuple[bytes, str]) -> None:
    binary, armored = real
    assert count_packets(binary, LIMITS).key_packets == 2
    assert count_packets(binary, LIMITS).layers == 1
    assert inspect(binary, LIMITS) is None
    assert inspect(armored.encode(), LIMITS) is None
    crlf = armored.replace("\n", "\r\n").encode()
    assert inspect(b"\r\n  " + crlf, LIMITS) is None


def test_more_key_packets_than_the_limit_are_refused(real: tuple[bytes, str]) -> None:
    binary, _ = real
    flood = b"".join(pkesk() for _ in range(3)) + binary  # 5 key packets
    refusal = inspect(flood, LIMITS)
    assert refusal is not None and refusal.reason == Reason.TOO_MANY_PACKETS
    skesk = old_format(3, bytes([4, 9, 3, 2]) + os.urandom(9))
    assert inspect(skesk * 4 + binary, LIMITS).reason == Reason.TOO_MANY_PACKETS  # type: ignore[union-attr]


def test_counting_stops_at_the_limit() -> None:
    """A million key packets cost no more than five: the walk stops past the limit."""
    head = b"".join(pkesk() for _ in range(5))
    truncated_rest = bytes([0xC1, 150])  # would be malformed, but is never reached
    assert count_packets(head + truncated_rest, LIMITS).key_packets == 5


def test_two_layers_are_refused(real: tuple[bytes, str]) -> None:
    binary, _ = real
    refusal = inspect(binary + binary, PacketLimits(max_key_packets=8, max_layers=1))
    assert refusal is not None and refusal.reason == Reason.TOO_MANY_PACKETS
    assert inspect(binary + binary, PacketLimits(max_key_packets=8, max_layers=2)) is None


def test_old_format_and_partial_lengths_are_read() -> None:
    message = old_format(1, os.urandom(60)) + partial(18, os.urandom(5000))
    census = count_packets(message, LIMITS)
    assert (census.key_packets, census.layers) == (1, 1)
    marker = bytes([0xCA, 3]) + b"PGP"
    assert inspect(marker + message, LIMITS) is None
    indeterminate = bytes([0x80 | (9 << 2) | 3]) + os.urandom(100)  # old SED, to the end
    assert inspect(old_format(1, os.urandom(60)) + indeterminate, LIMITS) is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("not a packet", b"\x00\x01\x02"),
        ("truncated length", bytes([0xC1, 0xFF, 0x00])),
        ("body past the end", bytes([0xC1, 100]) + os.urandom(10)),
        ("literal at the top", bytes([0xCB, 3]) + b"abc"),
        ("partial length on a key packet", bytes([0xC1, 0xE9]) + os.urandom(512)),
        ("partial without its last chunk", bytes([0xD2, 0xE9]) + os.urandom(512)),
        ("no key packet", partial(18, os.urandom(600))),
        ("armor without end", b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n"),
        ("other armor", b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----"),
        ("empty", b""),
    ],
)
def test_what_is_not_an_encrypted_message_fails_to_decrypt(name: str, data: bytes) -> None:
    refusal = inspect(data, LIMITS)
    assert refusal is not None and refusal.reason == Reason.DECRYPT_FAILED, name


def test_one_byte_partial_chunks_cannot_stall_the_walk() -> None:
    first = bytes([0xD2, 0xE9]) + os.urandom(512)
    tiny = (bytes([0xE0]) + b"x") * 200_000  # 200,000 chunks of one byte each
    flood = old_format(1, os.urandom(60)) + first + tiny + bytes([1]) + b"y"
    refusal = inspect(flood, LIMITS)
    assert refusal is not None and "partial" in refusal.detail


def test_armor_headers_and_checksum_are_skipped(real: tuple[bytes, str]) -> None:
    binary, _ = real
    body = base64.encodebytes(binary).decode()
    armored = (
        "-----BEGIN PGP MESSAGE-----\nVersion: X\nComment: y\n\n"
        f"{body}=abcd\n-----END PGP MESSAGE-----\n"
    )
    assert dearmor(armored.encode()) == binary
