"""Plain-text reports: cut a `text/plain` body into `Key: value` reports and check them.

In: the decoded text, its source name ("body" or a filename), today's date and the
taxonomy. Out: a `ParseOutcome`. The rules themselves live in `parsers.validate`.

The layout (docs/reference.md, "Report format"): each report starts at a `Report: type1|type2` line
and runs to the next one; blank lines and lines starting with `#` are ignored anywhere;
a `Team:` line before the first `Report:` line counts for every report below it that has
none of its own (the team is the signing key's anyway: the contract says the line is ignored,
and the receipt says so when it names another); anything else before the first
`Report:` line is an error (notes go in `#` lines). A
line that is exactly `-- ` (the RFC 3676 signature separator) ends the reports, so a mail
client's signature below them is not read as report lines. Lines are numbered from 1 as
an editor shows them: CRLF, CR and LF each end one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from parsers.drafts import (
    MAX_INPUT_BYTES,
    MAX_REPORT_LINES,
    Collector,
    Draft,
    Field,
    clip,
    too_large,
)
from parsers.fieldnames import REPORT_KEY, TEAM_KEY, normalise_key
from parsers.model import ParseOutcome
from parsers.taxonomy import Taxonomy
from parsers.validate import build

SIGNATURE_SEPARATOR = "-- "
STRAY_TEXT = (
    'text before the first "Report:" line; start each report with "Report: type1" or'
    ' "Report: type2", and begin notes with #'
)


@dataclass
class _Block:
    """The lines of one report, from its `Report:` line to the next."""

    line: int
    kind: str
    content: list[tuple[int, str]] = field(default_factory=list)
    size: int = 1  # every line, blank and comment lines included


def parse_text(text: str, source: str, today: date, taxonomy: Taxonomy) -> ParseOutcome:
    """Every report in `text`, or the errors that stop them being accepted."""
    into = Collector()
    read_text(text, source, today, taxonomy, into)
    return into.outcome()


def read_text(text: str, source: str, today: date, taxonomy: Taxonomy, into: Collector) -> None:
    """As `parse_text`, adding to `into` (one collector spans a whole signed content)."""
    if too_large(text):
        into.error(
            source, None, f"the text is larger than {MAX_INPUT_BYTES // 1024} KiB and was not read"
        )
        return
    stray, blocks = _blocks(_lines(text))
    if stray is not None:
        into.error(source, stray, STRAY_TEXT)
    for block in blocks:
        if block.size > MAX_REPORT_LINES:
            into.error(
                source,
                block.line,
                f"the report has more than {MAX_REPORT_LINES} lines and was not read",
            )
            continue
        fields = _fields(block, source, into)
        if block.content and not fields:
            continue  # every line was malformed and has been reported as such
        build(Draft(block.kind, tuple(fields), source, block.line), today, taxonomy, into)


def has_report_line(text: str) -> bool:
    """Whether `text` has a `Report:` line at all (a part without one is not a report)."""
    return any(_report_value(line) is not None for line in _lines(text))


def _lines(text: str) -> list[str]:
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if SIGNATURE_SEPARATOR in lines:
        return lines[: lines.index(SIGNATURE_SEPARATOR)]
    return lines


def _ignored(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _report_value(line: str) -> str | None:
    key, colon, value = line.partition(":")
    if colon and normalise_key(key) == REPORT_KEY:
        return value.strip()
    return None


def _blocks(lines: list[str]) -> tuple[int | None, list[_Block]]:
    """The first stray line before any report (or None), and the report blocks."""
    stray: int | None = None
    team: tuple[int, str] | None = None  # a Team: line before the first report
    blocks: list[_Block] = []
    for number, line in enumerate(lines, start=1):
        kind = _report_value(line)
        if kind is not None:
            blocks.append(_Block(number, kind))
        elif blocks:
            blocks[-1].size += 1
            if not _ignored(line):
                blocks[-1].content.append((number, line))
        elif team is None and _key_of(line) == TEAM_KEY:
            team = (number, line)
        elif stray is None and not _ignored(line):
            stray = number
    if team is not None:
        for block in blocks:
            if all(_key_of(line) != TEAM_KEY for _, line in block.content):
                block.content.insert(0, team)
    return stray, blocks


def _key_of(line: str) -> str | None:
    key, colon, _ = line.partition(":")
    return normalise_key(key) if colon else None


def _fields(block: _Block, source: str, into: Collector) -> list[Field]:
    fields: list[Field] = []
    for number, line in block.content:
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            into.error(source, number, f'this line is not of the form "Key: value": "{clip(line)}"')
        else:
            fields.append(Field(key.strip(), value.strip(), number))
    return fields
