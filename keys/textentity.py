"""The MIME entity that stands for inline PGP's signed text, built without whole copies.

In: the signed text as gpg returned it (bytes, UTF-8 unless the sender got it wrong).
Out: a compat32 text/plain entity with charset utf-8, which the parsers read as any
other part; reading it back (`get_payload(decode=True)`, the parsers' decoding) gives
exactly what `set_payload(text.decode("utf-8", "replace"), charset="utf-8")` gave.

That call holds the text five times over (str, bytes, str again, then base64 in
76-character pieces, joined), and every reader then undoes the base64, again in pieces:
for an inline message of 10 MiB some 100 MiB at once. Valid UTF-8, what every client
sends, is kept as it is, 8bit. Text with invalid bytes gets the very base64 entity that
call makes, built a block at a time, so what invalid bytes turn into does not change.
"""

from __future__ import annotations

import binascii
import codecs
import io
from email.message import Message

BLOCK = 1 << 20  # bytes decoded, or base64 lines built, at a time


def text_entity(text: bytes) -> Message:
    """A text/plain UTF-8 entity for `text` (see the module docstring)."""
    entity = Message()
    utf8 = _as_valid_utf8(text)
    if utf8 is text:
        entity["MIME-Version"] = "1.0"
        entity["Content-Type"] = 'text/plain; charset="utf-8"'
        entity["Content-Transfer-Encoding"] = "8bit"
        entity.set_payload(str(text, "ascii", "surrogateescape"))  # as a parser holds it
        return entity
    entity.set_payload("", charset="utf-8")  # the headers: MIME-Version, text/plain, base64
    entity.set_payload(base64_body(utf8))
    return entity


def _as_valid_utf8(data: bytes) -> bytes:
    """`data.decode("utf-8", "replace").encode("utf-8")`: `data` itself when it is valid."""
    if data.isascii():
        return data
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    out, view = io.BytesIO(), memoryview(data)
    for start in range(0, len(data), BLOCK):
        out.write(decoder.decode(view[start : start + BLOCK]).encode("utf-8"))
    out.write(decoder.decode(b"", final=True).encode("utf-8"))
    replaced = out.getvalue()
    return data if replaced == data else replaced


def base64_body(data: bytes) -> str:
    """`email.base64mime.body_encode(data)`: lines of 76 characters, each ending in LF."""
    line, view = 57, memoryview(data)  # 57 bytes make 76 base64 characters
    block = line * max(1, BLOCK // line)
    return "".join(
        b"".join(
            binascii.b2a_base64(view[i : i + line])
            for i in range(start, min(start + block, len(data)), line)
        ).decode("ascii")
        for start in range(0, len(data), block)
    )
