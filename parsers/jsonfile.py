"""JSON reports (`application/json` attachments): read report objects and check them.

In: the decoded JSON text, its filename, today's date and the taxonomy. Out: a
`ParseOutcome`; the rules live in `parsers.validate`, so the messages are the text
format's. JSON keeps no line numbers once decoded, so `line` is set only for syntax
errors; in a list of reports each message starts with "report N: " instead.

The format: one report object, or a list of them.

    {"report": "type1", "period": "2026-10", "team": "CERT-EXAMPLE",
     "values": {"requests": 1204, "incidents-opened": 311, ..., "hours-spent": 940.5}}

    {"report": "type2", "period": "2026-10",
     "counts": {"Intrusions / Privileged Account Compromise": 3, "Other": 1}}

    {"report": "type2", "period": "2026-10",
     "counts": [{"class": "Intrusions", "type": "Privileged Account Compromise", "count": 3},
                {"class": "Other", "count": 1}]}

    {"report": "type2", "period": "2026-10", "taxonomy": "rsit-1.3",
     "counts": {"malicious-code/infected-system": 7, "vulnerable/weak-crypto": 2}}

`team` is optional (and never trusted); `taxonomy` (type 2 only) is the `Taxonomy:` line of
the text format: the vocabulary every class and type of the report is named in. Keys inside
`values` and `counts` are those of the text format; the two member names are synonyms,
either may be used for either type.
Numbers may be JSON numbers or strings holding a number; they are checked as written
(`3.0` is not a whole number). A member given twice is an error, not "last wins".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from parsers.drafts import MAX_INPUT_BYTES, Collector, Draft, Field, clip, too_large
from parsers.fieldnames import PERIOD_KEY, TAXONOMY_KEY, TEAM_KEY
from parsers.model import ParseOutcome
from parsers.taxonomy import Taxonomy
from parsers.validate import build

_REPORT_MEMBERS = ("report", "period", "team", "taxonomy", "values", "counts")
_COUNT_MEMBERS = ("class", "type", "count")


class _Number(str):
    """A JSON number, kept exactly as written so that validation sees what the team wrote."""


@dataclass(frozen=True)
class _Object:
    """A JSON object with its members in order, duplicates kept so they can be refused."""

    pairs: tuple[tuple[str, object], ...]


def _object(pairs: list[tuple[str, object]]) -> _Object:
    return _Object(tuple(pairs))


@dataclass
class _Reader:
    """Where errors of one report object go; a structural error stops its validation."""

    source: str
    into: Collector
    prefix: str = ""
    failed: bool = False

    def fail(self, message: str) -> None:
        self.failed = True
        self.into.error(self.source, None, self.prefix + message)


def parse_json(text: str, source: str, today: date, taxonomy: Taxonomy) -> ParseOutcome:
    """Every report in the JSON `text`, or the errors that stop them being accepted."""
    into = Collector()
    read_json(text, source, today, taxonomy, into)
    return into.outcome()


def read_json(text: str, source: str, today: date, taxonomy: Taxonomy, into: Collector) -> None:
    """As `parse_json`, adding to `into` (one collector spans a whole signed content)."""
    if too_large(text):
        into.error(source, None, f"the JSON file is larger than {MAX_INPUT_BYTES // 1024} KiB")
        return
    document = _decode(text.removeprefix("\ufeff"), source, into)
    if isinstance(document, _Object):
        _read_report(document, _Reader(source, into), today, taxonomy)
    elif isinstance(document, list) and document:
        for number, item in enumerate(document, start=1):
            reader = _Reader(source, into, f"report {number}: ")
            if isinstance(item, _Object):
                _read_report(item, reader, today, taxonomy)
            else:
                reader.fail("each report must be a JSON object")
    elif isinstance(document, list):
        into.error(source, None, "the JSON file holds no report (the list is empty)")
    elif document is not None:
        into.error(source, None, "the JSON file must hold a report object or a list of them")


def _decode(text: str, source: str, into: Collector) -> object:
    """The document with numbers kept as written; None (and an error) if it is not JSON."""
    try:
        document: object = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_Number,
        )
    except json.JSONDecodeError as exc:
        into.error(source, exc.lineno, f"this is not valid JSON ({exc.msg})")
        return None
    except RecursionError:
        into.error(source, None, "the JSON file is nested too deeply to be a report")
        return None
    return document


def _read_report(report: _Object, reader: _Reader, today: date, taxonomy: Taxonomy) -> None:
    members: dict[str, object] = {}
    for name, value in report.pairs:
        if name not in _REPORT_MEMBERS:
            reader.fail(f'unknown member "{clip(name)}"; use {", ".join(_REPORT_MEMBERS)}')
        elif name in members:
            reader.fail(f'the member "{name}" is given twice')
        else:
            members[name] = value
    kind = members.get("report")
    if not _is_text(kind):
        reader.fail('the "report" member (type1 or type2) is missing or not a string')
    fields = [*_header(members), *_figures(members, reader)]
    if reader.failed or not isinstance(kind, str):
        return  # the structure is wrong: checking the figures would only add noise
    draft = Draft(kind, tuple(fields), reader.source, None, reader.prefix)
    build(draft, today, taxonomy, reader.into)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and not isinstance(value, _Number)


def _shown(value: object) -> str:
    """A value as validation should see it: numbers and strings as written, others named."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


def _header(members: dict[str, object]) -> list[Field]:
    return [Field(name, _shown(members[name]), None)
            for name in (PERIOD_KEY, TEAM_KEY, TAXONOMY_KEY) if name in members]  # fmt: skip


def _figures(members: dict[str, object], reader: _Reader) -> list[Field]:
    fields: list[Field | None] = []
    for name in ("values", "counts"):
        figures = members.get(name)
        if figures is None:
            continue
        if isinstance(figures, _Object):
            fields.extend(_pair(key, value) for key, value in figures.pairs)
        elif isinstance(figures, list) and name == "counts":
            fields.extend(_count_entry(entry, reader) for entry in figures)
        else:
            reader.fail(f'the member "{name}" must be an object of "name": number pairs')
    return [item for item in fields if item is not None]


def _pair(key: str, value: object) -> Field:
    return Field(key, _shown(value), None)


def _count_entry(entry: object, reader: _Reader) -> Field | None:
    if not isinstance(entry, _Object):
        reader.fail('each entry of "counts" must be an object like {"class": ..., "count": ...}')
        return None
    members = dict(entry.pairs)
    unknown = [name for name, _ in entry.pairs if name not in _COUNT_MEMBERS]
    if unknown or len(members) != len(entry.pairs):
        reader.fail(f'an entry of "counts" may only have {", ".join(_COUNT_MEMBERS)}, each once')
        return None
    cls, typ, count = members.get("class"), members.get("type"), members.get("count")
    if not _is_text(cls) or not (typ is None or _is_text(typ)):
        reader.fail('an entry of "counts" needs "class" (and may have "type") as strings')
        return None
    label = f"{cls}" if typ is None else f"{cls} / {typ}"
    return _pair(label, count)
