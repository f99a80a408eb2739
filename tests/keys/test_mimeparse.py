"""keys/mimeparse.py: the very tree `email.message_from_bytes` gives, for less memory.

Equality is checked on everything a reader of the tree can see (headers in order, the
Unix From line, defects, default types, every payload as stored), over hand-picked
edge cases and over generated messages built from the pieces that decide where a header
ends and what a body is, at several feed sizes so that slices end inside CR LF pairs,
header lines and boundaries.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import tracemalloc
from email.message import Message

import pytest
from samples import samples

from keys import mimeparse
from keys.mimeparse import parse_bytes

EDGE_CASES = samples("mimeparse")  # each described in tests/data/README.md

PIECES = [
    b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"A: b", b" c", b"\t", b" ", b":", b"x",
    b"From ", b"From x", b"X-Y:", b"\xff", b"\x85", b"\x0b", b"\x0c", b"\x1c", b"\xc3\xa9",
    b"Content-Type: text/plain", b"Content-Type: text/plain; charset=utf-8",
    b"Content-Type: multipart/mixed; boundary=q", b"--q", b"--q--",
    b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status",
    b"Content-Transfer-Encoding: base64", b"aGVsbG8=", b"-----BEGIN PGP MESSAGE-----",
]  # fmt: skip


def seen(msg: Message) -> object:
    """Everything a reader of the parsed tree can see, payloads exactly as stored."""
    payload = msg.get_payload()
    parts = [seen(p) for p in payload if isinstance(p, Message)] if msg.is_multipart() else None
    body = vars(msg)["_payload"] if parts is None else parts
    defects = [type(d).__name__ for d in msg.defects]
    return msg.get_unixfrom(), msg.items(), defects, msg.get_default_type(), body


def stdlib(data: bytes) -> object:
    return seen(email.message_from_bytes(data, policy=email.policy.compat32))


def generated(count: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible test input, not a secret
    return [b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 40))) for _ in range(count)]


@pytest.mark.parametrize("data", EDGE_CASES.values(), ids=EDGE_CASES)
def test_edge_cases_parse_as_the_stdlib_parses_them(data: bytes) -> None:
    assert seen(parse_bytes(data)) == stdlib(data)


@pytest.mark.parametrize("feed_bytes", [1, 2, 3, 7, 64, mimeparse.FEED_BYTES])
def test_generated_messages_parse_as_the_stdlib_parses_them(
    feed_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mimeparse, "FEED_BYTES", feed_bytes)
    for data in generated(1500, seed=feed_bytes):
        assert seen(parse_bytes(data)) == stdlib(data), data


def test_a_large_body_is_held_about_once() -> None:
    """13 MiB of 80-character lines: the stdlib parser peaks near 90 MiB above the input."""
    blob = os.urandom(3_000_000).hex()
    body = "".join(f"# {blob[i : i + 76]}\n" for i in range(0, len(blob), 76)).encode()
    data = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        msg = parse_bytes(data)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert vars(msg)["_payload"] == body.decode("ascii")
    assert peak < 1.3 * len(body)
