"""Team commands by email: `Command: template type1|type2` and `Command: status YYYY-MM`.

In: the authenticated signed entity. Out: a `Command`, a `CommandError` (a `Command:`
line that names nothing we know), or None when the content is not a command at all (then
it is read as reports). Pure: no database, no crypto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from parsers.extract import decode_charset
from parsers.template import TYPES

COMMAND_LINE = re.compile(r"^\s*command\s*:\s*(?P<verb>\S+)\s*(?P<argument>\S*)\s*$", re.I)
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KNOWN = "Command: template type1 | Command: template type2 | Command: status YYYY-MM"


@dataclass(frozen=True)
class Command:
    verb: str  # template | status
    argument: str  # type1 | type2 | YYYY-MM


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
            body = part.get_payload(decode=True)
            return (
                decode_charset(body, part.get_content_charset())
                if isinstance(body, bytes)
                else None
            )
    return None


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
    if verb == "template" and argument in TYPES:
        return Command(verb, argument)
    if verb == "status" and PERIOD.match(argument):
        return Command(verb, argument)
    shown = f"{match['verb']} {match['argument']}".strip()[:40]
    return CommandError(f'unknown command "{shown}"; the commands are: {KNOWN}')
