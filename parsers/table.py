"""CSV reports (`text/csv` attachments): cut rows into reports and check them.

In: the decoded CSV text, its filename, today's date and the taxonomy. Out: a
`ParseOutcome`; the rules live in `parsers.validate`, so the messages are the text
format's, with the CSV line number of the row as `line`.

The format, one row per field:

    report,period,key,value
    type1,2026-10,Requests,1204
    type1,2026-10,Hours-Spent,940.5
    type2,2026-10,Malicious Code / Virus,12
    type2,2026-10,Other,1
    type2,2026-10,Team,CERT-EXAMPLE
    type2,2026-09,Taxonomy,rsit-1.3
    type2,2026-09,malicious-code/infected-system,7

- The first row that is not blank is the header: the four column names `report`,
  `period`, `key`, `value` in any order (case-insensitive).
- Comma or semicolon separated (spreadsheets in much of Europe write `;`), chosen by
  which one makes the header; fields may be quoted as usual in CSV.
- Rows with the same `report` and `period` form one report, wherever they are in the
  file; the report's line is that of its first row. `key` is any key of the text format
  (type 1 field names and aliases, `CLASS[/TYPE]` for type 2, `Team`, and for type 2
  `Taxonomy`, the vocabulary the report's classes and types are named in).
- Blank rows and rows whose first cell starts with `#` are ignored; empty cells after the
  fourth are tolerated (spreadsheets add them), anything else there is an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from parsers.drafts import (
    MAX_INPUT_BYTES,
    MAX_REPORT_LINES,
    Collector,
    Draft,
    Field,
    report_kind,
    too_large,
)
from parsers.fieldnames import PERIOD_KEY, normalise_key
from parsers.model import ParseOutcome
from parsers.taxonomy import Taxonomy
from parsers.validate import build

if TYPE_CHECKING:
    from _csv import Reader

COLUMNS = ("report", "period", "key", "value")
HEADER = ",".join(COLUMNS)


@dataclass
class _Group:
    kind: str
    period: str
    line: int
    rows: list[Field] = field(default_factory=list)


def parse_csv(text: str, source: str, today: date, taxonomy: Taxonomy) -> ParseOutcome:
    """Every report in the CSV `text`, or the errors that stop them being accepted."""
    into = Collector()
    read_csv(text, source, today, taxonomy, into)
    return into.outcome()


def read_csv(text: str, source: str, today: date, taxonomy: Taxonomy, into: Collector) -> None:
    """As `parse_csv`, adding to `into` (one collector spans a whole signed content)."""
    if too_large(text):
        into.error(
            source,
            None,
            f"the CSV file is larger than {MAX_INPUT_BYTES // 1024} KiB and was not read",
        )
        return
    groups = _groups(text.removeprefix("\ufeff"), source, into)
    if groups is None:
        return
    if not groups:
        into.error(source, None, f'the CSV file holds no report; see the header "{HEADER}"')
    for group in groups:
        if len(group.rows) > MAX_REPORT_LINES:
            into.error(
                source,
                group.line,
                f"the report has more than {MAX_REPORT_LINES} rows and was not read",
            )
            continue
        period = Field(PERIOD_KEY, group.period, group.line)
        draft = Draft(group.kind, (period, *group.rows), source, group.line)
        build(draft, today, taxonomy, into)


def _rows(text: str, delimiter: str) -> Reader:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)


def _delimiter(text: str) -> str:
    """`;` if that is what makes the header row, else `,` (errors show when reading)."""
    try:
        for row in _rows(text, ";"):
            if not _skipped(row):
                return ";" if _columns(row) is not None else ","
    except csv.Error:
        pass
    return ","


def _skipped(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#")


def _columns(row: list[str]) -> dict[str, int] | None:
    names = [normalise_key(cell) for cell in row]
    while names and not names[-1]:
        names.pop()
    if sorted(names) != sorted(COLUMNS):
        return None
    return {name: names.index(name) for name in COLUMNS}


def _groups(text: str, source: str, into: Collector) -> list[_Group] | None:
    """The reports of the file in order of first appearance; None if it is unreadable."""
    groups: dict[tuple[str, str], _Group] = {}
    columns: dict[str, int] | None = None
    reader = _rows(text, _delimiter(text))
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if _skipped(row):
                continue
            if columns is None:
                columns = _columns(row)
                if columns is None:
                    into.error(source, start, f'the first row must be the header "{HEADER}"')
                    return None
                continue
            _add_row(row, start, columns, groups, source, into)
    except csv.Error:
        into.error(source, line, "this row is not valid CSV (perhaps a quote is not closed)")
        return None
    return list(groups.values())


def _add_row(
    row: list[str],
    line: int,
    columns: dict[str, int],
    groups: dict[tuple[str, str], _Group],
    source: str,
    into: Collector,
) -> None:
    if len(row) < len(COLUMNS) or any(cell.strip() for cell in row[len(COLUMNS) :]):
        into.error(source, line, f'this row does not have the {len(COLUMNS)} columns "{HEADER}"')
        return
    cells = {name: row[index].strip() for name, index in columns.items()}
    kind = report_kind(cells["report"]) or normalise_key(cells["report"])
    group = groups.setdefault(
        (kind, cells["period"]), _Group(cells["report"], cells["period"], line)
    )
    group.rows.append(Field(cells["key"], cells["value"], line))
