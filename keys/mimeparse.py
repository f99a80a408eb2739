"""Parse RFC 5322 bytes into the `Message` that `email.message_from_bytes` gives, holding less.

In: raw bytes (an incoming message, or a decrypted entity). Out: a compat32
`email.message.Message`, the same tree, headers, defects and payloads as
`email.message_from_bytes(data, policy=compat32)`.

Why not call that: it decodes the bytes into one str, wraps that str in a StringIO
(four bytes a character) and splits every body into a list of line objects before joining
them again. For a 13 MiB plaintext that is about 95 MiB at once, and for a body of very
short lines some 25 times its size, before anything has been authenticated. Here the
stdlib parser is fed slices of the bytes (no whole copy, no StringIO), and when the
message is not a multipart or a `message/*` its body is not fed at all: the parser reads
only the header block, and the body is set in one piece, exactly the str the parser would
have joined from its lines. Multipart bodies still go through the parser line by line, so
that there is one MIME parser, the stdlib's, deciding what is inside what.
"""

from __future__ import annotations

import re
from email.feedparser import FeedParser
from email.message import Message
from email.policy import compat32

# 64 KiB of text at a time: the parser's line buffer holds one slice, four bytes a char.
FEED_BYTES = 65_536

# The stdlib parser's own tests (email/feedparser.py): a header or continuation line,
# and a line end. Lines end at CRLF, CR or LF alike.
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
_LINE_END = re.compile(rb"\r\n|\r|\n")
HEADER_LINE, LINE_END = _HEADER_LINE, _LINE_END  # for keys/headers.py, which counts lines


def parse_bytes(data: bytes) -> Message:
    """`email.message_from_bytes(data, policy=compat32)`, without its whole copies."""
    if len(data) <= FEED_BYTES:
        # One slice holds it all: no whole copy to spare, and reading the header on its
        # own first would cost a second pass (150 µs against 90 for a 2 KB submission).
        return _fed(data, len(data))
    seen_to = _header_read_to(data)
    head = _fed(data, seen_to)
    if head.get_content_maintype() in ("multipart", "message"):
        return _fed(data, len(data))  # their bodies hold more MIME: the parser reads them
    # A leaf's body is every line after the header, so the rest of the bytes follow what
    # the parser already took as body (nothing, or lines it pushed back out of the header).
    rest = _text(data, seen_to)
    begun = vars(head).get("_payload")  # as parsed: get_payload() would decode 8-bit bytes
    head.set_payload(begun + rest if isinstance(begun, str) and begun else rest)
    return head


def _header_read_to(data: bytes) -> int:
    """Where the line that ends the header block ends.

    The header is every line from the top that looks like a header field or a
    continuation (the stdlib parser's test); the first other line ends it: the blank
    separator, or the body's first line. The parser must see that line to read the header
    as it would in one piece.
    """
    start = 0
    while start < len(data):
        found = _LINE_END.search(data, start)
        end = found.end() if found else len(data)
        if not _HEADER_LINE.match(data, start):
            return end
        start = end
    return len(data)


def _text(data: bytes, start: int, end: int | None = None) -> str:
    """`data[start:end]` as the parser holds text: ASCII, other bytes as surrogate escapes."""
    return str(memoryview(data)[start:end], "ascii", "surrogateescape")


def _fed(data: bytes, end: int) -> Message:
    """What the stdlib parser makes of `data[:end]`, fed a slice at a time."""
    parser: FeedParser[Message] = FeedParser(policy=compat32)
    for start in range(0, end, FEED_BYTES):
        parser.feed(_text(data, start, min(start + FEED_BYTES, end)))
    return parser.close()


def parse_header(data: bytes, end: int) -> Message:
    """The header block of `data`, which ends at `end` (read as `parse_bytes` reads it)."""
    return _fed(data, end)
