"""Team commands by email: `Command: template type1|type2 [TAXONOMY]` and
`Command: status YYYY-MM`; TAXONOMY (type2 only) is ecsirt-v2 or rsit-1.3, the vocabulary
the template names classes and types in (the canonical one when not given).

In: the authenticated signed entity. Out: a `Command`, a `CommandError` (a `Command:`
line that names nothing we know), or None when the content is not a command at all (then
it is read as reports). Pure: no database, no crypto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from parsers.drafts import MAX_INPUT_BYTES
from parsers.extract import (
    IDENTITY_ENCODINGS,
    decode_charset,
    quoted_printable,
    transfer_encoding,
)
from parsers.fieldnames import normalise_key
from parsers.taxonomy import VOCABULARIES
from parsers.template import TYPES

COMMAND_LINE = re.compile(
    r"^\s*command\s*:\s*(?P<verb>\S+)\s*(?P<argument>\S*)\s*(?P<option>\S*)\s*$", re.I
)
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KNOWN = (
    "Command: template type1 | Command: template type2"
    f" [{' | '.join(VOCABULARIES)}] | Command: status YYYY-MM"
)


@dataclass(frozen=True)
class Command:
    verb: str  # template | status
    argument: str  # type1 | type2 | YYYY-MM
    taxonomy: str | None = None  # template type2: the vocabulary asked for, if any


@dataclass(frozen=True)
class CommandError:
    message: str  # plain English, safe to mail back to the team


# str.splitlines() ends a line at each of these (CR LF counts once).
_LINE_BREAK = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE = re.compile(f"[^{_LINE_BREAK}]*(?:\r\n|[{_LINE_BREAK}])?")


def _lines(text: str) -> Iterator[str]:
    """`text.splitlines()`, one line at a time: a body of megabytes is not split up front."""
    start = 0
    while start < len(text):
        found = _LINE.match(text, start)
        end = found.end() if found else len(text)
        yield text[start:end].rstrip(_LINE_BREAK)
        start = end


def _first_text(entity: Message) -> str | None:
    for part in entity.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            return _text(part)
    return None


# Charsets in which ASCII bytes are the same characters: an ASCII body in one is its text.
_ASCII_SUPERSETS = frozenset({None, "us-ascii", "ascii", "utf-8", "iso-8859-1", "latin-1"})


def _text(part: Message) -> str | None:
    """The part's text. An ASCII body sent as it is is read in place, not copied.

    Only the first meaningful line matters here, and a report may carry megabytes of
    comment lines before it: decoding such a body whole copied it three times over (a
    13 MB body, 38 MiB more at once) just to find that it holds no command. A
    quoted-printable body is decoded only up to the size a report may have.
    """
    stored = vars(part).get("_payload")
    encoding = transfer_encoding(part)
    if (
        encoding in IDENTITY_ENCODINGS
        and part.get_content_charset() in _ASCII_SUPERSETS
        and isinstance(stored, str)
        and stored.isascii()
    ):
        return stored
    if encoding == "quoted-printable":  # decoded only as far as a report may go
        decoded = quoted_printable(part, MAX_INPUT_BYTES)
        if not isinstance(decoded, bytes):
            return None  # damaged or too large: not a command, and the reports say why
        return decode_charset(decoded, part.get_content_charset())
    body = part.get_payload(decode=True)
    return decode_charset(body, part.get_content_charset()) if isinstance(body, bytes) else None


def find_command(entity: Message) -> Command | CommandError | None:
    """The command in the first text part, if its first meaningful line is `Command:`."""
    text = _first_text(entity)
    if text is None:
        return None
    first = next(
        (line for line in _lines(text) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    if first is None or not first.lstrip().lower().startswith("command"):
        return None
    match = COMMAND_LINE.match(first)
    if match is None:
        return CommandError(f"could not read the command line; write one of: {KNOWN}")
    verb, argument = match["verb"].lower(), match["argument"].lower()
    option = normalise_key(match["option"]) or None
    if verb == "template" and argument == "type2" and option in (None, *VOCABULARIES):
        return Command(verb, argument, option)
    if option is None and verb == "template" and argument in TYPES:
        return Command(verb, argument)
    if option is None and verb == "status" and PERIOD.match(argument):
        return Command(verb, argument)
    shown = f"{match['verb']} {match['argument']} {match['option']}".strip()[:40]
    return CommandError(f'unknown command "{shown}"; the commands are: {KNOWN}')
