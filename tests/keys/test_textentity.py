"""keys/textentity.py: the inline entity reads back exactly as the base64 one it replaces.

The reference is what unwrap built before: `set_payload(text.decode("utf-8", "replace"),
charset="utf-8")`. Valid UTF-8 now stays 8bit, so the check is on what readers get:
`get_payload(decode=True)` and the parsers' own reading (charset, transfer encoding,
body bytes, text). Text with invalid bytes must give the very same entity as before,
also when its blocks end inside a multi-byte sequence.
"""

from __future__ import annotations

import os
import random
from datetime import date
from email.message import Message

import pytest

from keys import textentity
from keys.textentity import text_entity
from parsers.extract import decode_charset, parse_signed_content
from parsers.taxonomy import load_taxonomy

VALID = [b"", b"Report: type1\n", "é€𝄞 Report".encode(), b"x" * 58_369]
INVALID = [b"\xff\xfe not UTF-8", b"abc\xc3", "é".encode() + b"\xe2\x82", b"\xed\xa0\x80"]


def reference(text: bytes) -> Message:
    entity = Message()
    entity.set_payload(text.decode("utf-8", "replace"), charset="utf-8")
    return entity


def read_back(entity: Message) -> tuple[object, ...]:
    body = entity.get_payload(decode=True)
    assert isinstance(body, bytes)
    charset = entity.get_content_charset()
    return entity.get_content_type(), charset, body, decode_charset(body, charset)


def generated(count: int) -> list[bytes]:
    rnd = random.Random(11)  # noqa: S311 - reproducible test input, not a secret
    pieces = [b"a", b"\n", "é".encode(), "€".encode(), "𝄞".encode(), b"\xff", b"\xc3", b"\xe2\x82"]
    return [b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30))) for _ in range(count)]


@pytest.mark.parametrize("text", VALID + INVALID + [os.urandom(999)])
def test_readers_get_what_the_base64_entity_gave(text: bytes) -> None:
    assert read_back(text_entity(text)) == read_back(reference(text))


@pytest.mark.parametrize("text", INVALID)
def test_text_with_invalid_bytes_gets_the_base64_entity_itself(text: bytes) -> None:
    built, plain = text_entity(text), reference(text)
    assert built.as_bytes() == plain.as_bytes()
    assert vars(built)["_payload"] == vars(plain)["_payload"]


@pytest.mark.parametrize("block", [1, 2, 3, 5, textentity.BLOCK])
def test_block_edges_inside_characters_change_nothing(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(textentity, "BLOCK", block)
    for text in generated(2000):
        assert read_back(text_entity(text)) == read_back(reference(text)), text


def test_the_parsers_read_a_report_in_it_as_before() -> None:
    text = "Report: type1\nPeriod: 2026-10\nRequests: 12\n# é\n".encode()
    today, taxonomy = date(2026, 11, 2), load_taxonomy()
    read = parse_signed_content(text_entity(text), today, taxonomy)
    assert read == parse_signed_content(reference(text), today, taxonomy)
