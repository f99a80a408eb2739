"""keys/unwrap.py holding a large message: how much at once, and the same results as before.

A large submission took 10 to 12 times its plaintext while it was unwrapped (the stdlib
parser's whole copies, the raw bytes and the ciphertext kept to the end). The bound here
is 4.5 times, for each accepted shape, with the caller handing the raw bytes over rather
than keeping them. Taking a multipart/signed entity apart by position is checked against
the plain split. (The inline entity: tests/keys/test_textentity.py.)
"""

from __future__ import annotations

import os
import re
import tracemalloc

import pytest
from samples import samples
from support import TYPE1, TeamClient

from keys.gpg import GnuPG
from keys.mimeparse import parse_bytes
from keys.shapes import Detached, Limits, Refusal, multipart_signed_halves
from keys.unwrap import Unwrapped, Unwrapper


def padded_report(size: int) -> str:
    """A report after `size` characters of comment lines, as the memory benchmark sends."""
    blob = os.urandom(size // 2).hex()
    comments = "".join(f"# {blob[i : i + 76]}\n" for i in range(0, len(blob), 76))
    return comments + TYPE1


@pytest.mark.parametrize("form", ["combined", "signed-then-encrypted", "inline"])
def test_a_large_message_is_unwrapped_within_4_5_times_its_plaintext(
    gateway: tuple[GnuPG, str], team: TeamClient, form: str
) -> None:
    report = padded_report(3_000_000)
    handed_over = [team.submit(report, form=form)]
    unwrapper = Unwrapper(gateway[0], Limits())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = unwrapper.unwrap(handed_over.pop())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert isinstance(result, Unwrapped), result
    assert result.verification.signatures[0].outcome == "good"
    # Before: 10.4 (combined), 12.4 (signed-then-encrypted) and 10.1 (inline) times;
    # now 3.0, 4.1 and 3.7.
    assert peak < 4.5 * len(report), f"{peak / len(report):.1f} times the plaintext"


def split_halves(entity: bytes) -> tuple[bytes, bytes] | None:
    """The plain reading: canonicalise everything, split at every delimiter."""
    msg = parse_bytes(entity)
    boundary = msg.get_boundary()
    assert boundary is not None
    crlf = re.sub(rb"\r?\n", b"\r\n", entity)
    pieces = crlf.split(b"\r\n--" + boundary.encode("ascii", "replace"))
    if len(pieces) != 4 or not pieces[3].startswith(b"--"):
        return None
    signed = pieces[1].split(b"\r\n", 1)
    if len(signed) != 2 or signed[0].strip():
        return None
    signature = list(msg.walk())[2].get_payload(decode=True)  # the root, part 1, part 2
    assert isinstance(signature, bytes)
    return signed[1], signature


SIGNED = samples("signed-halves")  # each described in tests/data/README.md


@pytest.mark.parametrize("entity", SIGNED.values(), ids=SIGNED)
def test_multipart_signed_halves_are_the_plain_split(entity: bytes) -> None:
    msg = parse_bytes(entity)
    found = multipart_signed_halves(msg, entity)
    expected = split_halves(entity) if len(list(msg.walk())) == 3 else None
    if expected is None:
        assert isinstance(found, Refusal)
    else:
        assert isinstance(found, Detached)
        assert (found.signed, found.signature) == expected
