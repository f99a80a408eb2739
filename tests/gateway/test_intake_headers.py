"""gateway/spool.py strip_status_headers: the plain line-by-line reading, without its copies.

`reference` below is the obvious algorithm (the one the door used before): split the
whole message into lines at CRLF, LF or CR, drop status fields and their continuation
lines until the first blank line. The door's version looks only at the header, in
place; both must give the same bytes for every message, and a message without status
fields must come back as the very object that went in (no copy of 10 MiB).
"""

from __future__ import annotations

import random
import re

import pytest
from samples import samples

from gateway.spool import strip_status_headers

STATUS = re.compile(rb"^x-clearinghouse-[^:]*:", re.I)

PIECES = [
    b"\r", b"\n", b"\r\n", b"X-Clearinghouse-State: accepted", b"x-CLEARINGHOUSE-a:",
    b" folded", b"\tfolded", b"From: a@b", b"Subject: b", b"body", b"X-Clearinghouse-",
    b":", b" ", b"\n\r", b"\r\r",
]  # fmt: skip


def reference(raw: bytes) -> bytes:
    if b"x-clearinghouse-" not in raw.lower():
        return raw
    lines = raw.splitlines(keepends=True)
    kept: list[bytes] = []
    dropping = False
    for index, line in enumerate(lines):
        if not line.rstrip(b"\r\n"):
            kept.extend(lines[index:])
            break
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(STATUS.match(line))
        if not dropping:
            kept.append(line)
    return b"".join(kept)


CHOSEN = samples("status-headers")  # each described in tests/data/README.md


@pytest.mark.parametrize("raw", CHOSEN.values(), ids=CHOSEN)
def test_chosen_messages_lose_exactly_what_the_reference_drops(raw: bytes) -> None:
    assert strip_status_headers(raw) == reference(raw)


def test_generated_messages_lose_exactly_what_the_reference_drops() -> None:
    rnd = random.Random(7)  # noqa: S311 - reproducible test input, not a secret
    for _ in range(20_000):
        raw = b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 25)))
        assert strip_status_headers(raw) == reference(raw), raw


def test_a_message_without_status_fields_is_not_copied() -> None:
    raw = b"Subject: s\r\n\r\n" + b"X-Clearinghouse-State: in the body\r\n" * 1000
    assert strip_status_headers(raw) is raw
