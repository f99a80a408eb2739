"""Find the reports in an authenticated MIME entity and hand each part to its format.

In: the signed entity (already decrypted and authenticated by `keys/`), today's date and
the taxonomy. Out: one `ParseOutcome` for the whole content. Hostile mail reaches this
code, so nothing here raises on input: damaged encodings, unknown charsets, deep nesting
and too many parts all become `ReportError`s.

Which parts are read, by Content-Type:
- `text/plain` -> `parsers.text`, unless it is an armored PGP block or has no `Report:`
  line at all (a covering note, a signature file); such parts are skipped silently;
- `text/csv` (and `text/comma-separated-values`, `application/csv`) -> `parsers.table`;
- `application/json` -> `parsers.jsonfile`;
- `application/octet-stream`, and `text/plain` attachments, named `*.csv` or `*.json` ->
  by that extension (mail clients label attachments loosely);
- everything else is ignored, and `application/pgp-encrypted`, `application/pgp-signature`,
  `application/pgp-keys`, `message/rfc822` and `multipart/encrypted` are never opened:
  what they hold is not the team's signed report.
If no part yields a report or an error, the outcome is one "no report found" error. The
legacy display block of RFC 9788 header protection (a `text/plain` part marked
`hp-legacy-display="1"` starts with copies of Subject/From/To lines) is not report text
and is skipped.

A part's `source` is "body" for the first unnamed part ("body part 2", ... after it), else
its filename reduced to printable ASCII, at most 60 characters.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass
from datetime import date
from email.message import Message

from parsers.drafts import MAX_INPUT_BYTES, Collector
from parsers.jsonfile import read_json
from parsers.model import ParseOutcome
from parsers.table import read_csv
from parsers.taxonomy import Taxonomy
from parsers.text import has_report_line, read_text

MAX_PARTS = 100
MAX_DEPTH = 10
MAX_SOURCE_CHARS = 60

NEVER_OPENED = frozenset({
    "application/pgp-encrypted",
    "application/pgp-signature",
    "application/pgp-keys",
    "message/rfc822",
    "multipart/encrypted",
})  # fmt: skip
CSV_TYPES = frozenset({"text/csv", "text/comma-separated-values", "application/csv"})
JSON_TYPES = frozenset({"application/json"})
BY_EXTENSION = frozenset({"application/octet-stream", "text/plain"})
NO_REPORT = (
    'no report found; write it in the message body starting with "Report: type1" or'
    ' "Report: type2", or attach it as a CSV or JSON file'
)

# The stdlib header parsers have raised unexpected exceptions on crafted headers before;
# a part whose headers cannot be read is reported, not allowed to crash the worker.
_HEADER_FAILURES = (ValueError, LookupError, TypeError, IndexError, AttributeError)
_BAD_QP_ESCAPE = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r?\n|\r|$))")
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"  # what \s matches in a bytes pattern


@dataclass
class _Part:
    """A leaf part worth reading: its format, its headers as read, and its entity."""

    entity: Message
    fmt: str  # "text" | "csv" | "json"
    filename: str | None
    charset: str | None
    encoding: str
    legacy_display: bool = False  # RFC 9788: leading header lines shown for old clients


def parse_signed_content(entity: Message, today: date, taxonomy: Taxonomy) -> ParseOutcome:
    """Every report in the signed content, or every problem that stops it being accepted."""
    into = Collector()
    parts = _parts(entity, into)
    unnamed = 0
    for part in parts:
        source = _sanitise(part.filename) if part.filename else None
        if source is None:
            unnamed += 1
            source = "body" if unnamed == 1 else f"body part {unnamed}"
        _read_part(part, source, today, taxonomy, into)
    if not into.reports and not into.errors:
        into.error("message", None, NO_REPORT)
        into.nothing_found = True
    return into.outcome()


def _parts(root: Message, into: Collector) -> list[_Part]:
    """The readable leaf parts in document order; none if the structure is out of bounds."""
    found: list[_Part] = []
    stack: list[tuple[Message, int]] = [(root, 1)]
    seen = 0
    while stack:
        entity, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS or depth > MAX_DEPTH:
            limit = (
                f"has more than {MAX_PARTS} parts"
                if seen > MAX_PARTS
                else f"is nested more than {MAX_DEPTH} levels deep"
            )
            into.error("message", None, f"the message {limit}; it was not read")
            return []
        try:
            ctype = entity.get_content_type()
        except _HEADER_FAILURES:
            into.error("message", None, "a part of the message has unreadable headers")
            continue
        if ctype in NEVER_OPENED:
            continue
        if entity.is_multipart():
            children = entity.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
            continue
        part = _describe(entity, ctype, into)
        if part is not None:
            found.append(part)
    return found


def _describe(entity: Message, ctype: str, into: Collector) -> _Part | None:
    try:
        filename = entity.get_filename()
        charset = entity.get_content_charset()
        encoding = transfer_encoding(entity)
        legacy = str(entity.get_param("hp-legacy-display", "0")).strip() == "1"
    except _HEADER_FAILURES:
        into.error("message", None, "a part of the message has unreadable headers")
        return None
    fmt = _format(ctype, filename)
    return None if fmt is None else _Part(entity, fmt, filename, charset, encoding, legacy)


def transfer_encoding(entity: Message) -> str:
    """The entity's Content-Transfer-Encoding, lower-cased; 7bit when it names none."""
    return str(entity.get("Content-Transfer-Encoding", "7bit")).strip().lower()


def _format(ctype: str, filename: str | None) -> str | None:
    extension = (filename or "").rpartition(".")[2].strip().lower()
    if ctype in BY_EXTENSION and filename and extension in ("csv", "json"):
        return extension
    if ctype == "text/plain":
        return "text"
    if ctype in CSV_TYPES:
        return "csv"
    if ctype in JSON_TYPES:
        return "json"
    return None


IDENTITY_ENCODINGS = ("7bit", "8bit", "binary", "")  # the body is sent as it is


def _sanitise(filename: str) -> str | None:
    base = re.split(r"[/\\]", filename)[-1]
    printable = "".join(ch for ch in base if " " <= ch <= "~").strip()
    return printable[:MAX_SOURCE_CHARS] or None


def _read_part(part: _Part, source: str, today: date, taxonomy: Taxonomy, into: Collector) -> None:
    if _stored_size(part) > MAX_INPUT_BYTES:
        into.error(source, None, _larger_than(MAX_INPUT_BYTES))
        return
    raw = _body_bytes(part, source, into)
    if raw is None:
        return
    if len(raw) > MAX_INPUT_BYTES:
        into.error(source, None, _larger_than(MAX_INPUT_BYTES))
        return
    text = decode_charset(raw, part.charset)
    if part.legacy_display and part.fmt == "text":
        text = _blank_legacy_display(text)
    if part.fmt == "csv":
        read_csv(text, source, today, taxonomy, into)
    elif part.fmt == "json":
        read_json(text, source, today, taxonomy, into)
    elif not text.lstrip().startswith("-----BEGIN PGP") and has_report_line(text):
        read_text(text, source, today, taxonomy, into)


def _stored_size(part: _Part) -> int:
    """The body's size in bytes as stored, when no transfer encoding changes it; else 0.

    A body that is too large is then refused without a copy of it being made (a 13 MB
    body was encoded and decoded whole, 38 MiB more at once, just to be refused).
    base64 and quoted-printable bodies are measured once decoded.
    """
    stored = vars(part.entity).get("_payload")
    if part.encoding in IDENTITY_ENCODINGS and isinstance(stored, str | bytes):
        return len(stored)  # a parsed body keeps each 8-bit byte as one character
    return 0


def _body_bytes(part: _Part, source: str, into: Collector) -> bytes | None:
    """The part's body with its Content-Transfer-Encoding undone; None if it is damaged."""
    if part.encoding == "quoted-printable":
        decoded = quoted_printable(part.entity, MAX_INPUT_BYTES)
        if isinstance(decoded, BodyProblem):
            into.error(source, None, decoded.message)
            return None
        return decoded
    data = _transmitted(part.entity)
    if data is None:
        return None
    if part.encoding == "base64":
        return _base64(data, source, into)
    if part.encoding not in IDENTITY_ENCODINGS:
        into.error(source, None, "unknown Content-Transfer-Encoding; use base64 or none")
        return None
    return data


@dataclass(frozen=True)
class BodyProblem:
    message: str  # plain English, safe to mail back to the team


_STR_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_BYTES_LINE = re.compile(rb"[^\n]*\n|[^\n]+")


def quoted_printable(entity: Message, limit: int) -> bytes | BodyProblem | None:
    """The stored quoted-printable body decoded, or why not: damaged, or over `limit`;
    None if there is no stored body.

    A line at a time (each decodes on its own: soft breaks and escapes end with their
    line), stopping once past `limit`: a 13 MB body was copied whole, then decoded
    whole, only to be refused as too large (38 MiB more at once).
    """
    payload = vars(entity).get("_payload")
    if isinstance(payload, str):
        lines = (_as_transmitted(m.group()) for m in _STR_LINE.finditer(payload))
    elif isinstance(payload, bytes):
        lines = (m.group() for m in _BYTES_LINE.finditer(payload))
    else:
        return None
    decoded = bytearray()
    for line in lines:
        if _BAD_QP_ESCAPE.search(line):
            return BodyProblem("the quoted-printable encoding is damaged; not read")
        decoded += quopri.decodestring(line)
        if len(decoded) > limit:
            return BodyProblem(_larger_than(limit))
    return bytes(decoded)


def _larger_than(limit: int) -> str:
    return f"larger than {limit // 1024} KiB; not read"


def _transmitted(entity: Message) -> bytes | None:
    """The body as transmitted (still transfer-encoded), byte for byte.

    The parser keeps 8-bit bytes as surrogate escapes in the str payload; `get_payload()`
    would replace them (decoding with the charset parameter, ASCII if there is none) and
    `get_payload(decode=True)` decodes base64 leniently. So the stored payload is read as
    it is, and decoded strictly here.
    """
    payload = vars(entity).get("_payload")
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return None
    return _as_transmitted(payload)


def _as_transmitted(payload: str) -> bytes:
    try:  # a parsed message: ASCII, 8-bit bytes kept as surrogate escapes
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # a part built in code from a non-ASCII str
        return payload.encode("utf-8", "replace")


def _blank_legacy_display(text: str) -> str:
    """Blank the RFC 9788 legacy display block (header lines up to the first empty line).

    The lines are blanked, not removed, so line numbers still match what the team sees.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            break
        lines[index] = ""
    return "\n".join(lines)


def _base64(data: bytes, source: str, into: Collector) -> bytes | None:
    compact = data.translate(None, _ASCII_WHITESPACE)  # re.sub would hold every piece
    if len(compact) % 4 in (2, 3):  # some mailers leave out the final padding
        compact += b"=" * (4 - len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        into.error(source, None, "the base64 encoding is damaged; not read")
        return None


def decode_charset(raw: bytes, charset: str | None) -> str:
    """Text in the declared charset; UTF-8 when undeclared, ASCII or unknown. Never raises."""
    if charset is None or charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # US-ASCII labels on UTF-8 text are common, and UTF-8 is a superset
    try:
        return raw.decode(charset, "replace")
    except (LookupError, ValueError):  # unknown or non-text codec (e.g. "zlib"), or "idna"
        return raw.decode("utf-8", "replace")
