"""The report rules, once for every format: a report as written becomes a record or errors.

In: a `Draft` (report type, `Field`s with their lines, where it came from), today's date
and the taxonomy. Out: a `Type1Report`/`Type2Report` or `ReportError`s, gathered in a
`Collector` that turns into the `ParseOutcome` of a whole signed content. Text, CSV and
JSON readers only cut their input into drafts; every rule lives here.

Rules beyond the contract's wording (docs/reference.md), decided here:
- `Period` must be a real month from 1990-01 on and not after today's month. The current
  month is allowed although it is not over: teams may send early and resend later (each
  resend is a new revision); months after today's month are refused.
- A report whose values are all empty (an untouched template) gets one error, not one
  per field. In type 2, a line whose count is empty counts nothing, as if left out.
- Counts are whole decimal numbers of at most 12 digits (`0`-`9` only, no sign, no
  thousands separators); hours-spent may have up to 2 decimal places.
- Type 2: a `Taxonomy:` line (ecsirt-v2 or rsit-1.3) makes every name of the report be
  read in that vocabulary; without it each name is read as eCSIRT.net v2 first, then as
  RSIT 1.3. Each line keeps what was sent and what it counts as in the canonical
  vocabulary. Naming the same class/type twice, by any spelling or by its exact
  counterpart in the other vocabulary (Login attempts, brute-force), is an error.
  Different names that count as the same canonical class/type (Malicious Code / C2
  Server and Malicious Code / Infected System in eCSIRT.net v2) are added together;
  that is what the mapping means.
- Two reports of the same type and period in one message are an error: which one counts
  would otherwise depend on their order.
- Error messages quote at most `ECHO` characters of what was written, non-printable
  characters replaced by `?`: they are mailed back to the team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from parsers.drafts import Collector, Draft, Field, clip, report_kind
from parsers.fieldnames import (
    PERIOD_KEY,
    TAXONOMY_KEY,
    TEAM_KEY,
    TYPE1_LABELS,
    misnumbered,
    normalise_key,
    type1_field,
)
from parsers.model import (
    TYPE1_FIELDS,
    Classification,
    CountLine,
    Report,
    Type1Report,
    Type2Report,
)
from parsers.taxonomy import Match, Target, Taxonomy

MAX_DIGITS = 12
FIRST_YEAR = 1990

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")
_COUNT = re.compile(r"[0-9]+")
_HOURS = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_NEGATIVE = re.compile(r"-\s*[0-9]")


UNFILLED = (
    "no value is filled in (a blank template?): write each count after its colon; in a "
    "type 2 report, lines left empty or left out count nothing"
)


@dataclass
class _Check:
    """The errors of one draft while it is being checked."""

    draft: Draft
    errors: list[tuple[int | None, str]] = field(default_factory=list)

    def fail(self, line: int | None, message: str) -> None:
        self.errors.append((line, self.draft.prefix + message))


def build(draft: Draft, today: date, taxonomy: Taxonomy, into: Collector) -> None:
    """Check one draft; add its report, or its errors, to `into`."""
    check = _Check(draft)
    kind = report_kind(draft.kind)
    if kind is None:
        check.fail(draft.line, f'unknown report type "{clip(draft.kind)}"; use type1 or type2')
    elif not draft.fields:
        check.fail(draft.line, "the report is empty")
    else:
        report = _build_kind(kind, check, today, taxonomy)
        if report is not None:
            into.report(report, draft.line)
    for line, message in check.errors:
        into.error(draft.source, line, message)


def _build_kind(kind: str, check: _Check, today: date, taxonomy: Taxonomy) -> Report | None:
    headers, body = _split_headers(check)
    if body and not any(item.value.strip() for item in body):
        check.fail(check.draft.line, UNFILLED)  # one line, not one per empty field
        return None
    if kind == "type2":  # a class or type left empty counts nothing, as if left out
        body = [item for item in body if item.value.strip()]
    period = _period(headers.get(PERIOD_KEY), today, check)
    team_field = headers.get(TEAM_KEY)
    team = clip(team_field.value) if team_field is not None else None
    source = check.draft.source
    if kind == "type1":
        written = headers.get(TAXONOMY_KEY)
        if written is not None:
            check.fail(written.line, '"Taxonomy" is for type 2 reports only; remove it here')
        values = _type1_values(body, check)
        if period is None or check.errors:
            return None
        return Type1Report(period, values, source=source, claimed_team=team or None)
    lines = _type2_lines(body, taxonomy, headers.get(TAXONOMY_KEY), check)
    if period is None or check.errors:
        return None
    counts: dict[Target, int] = {}
    for line in lines:
        counts[line.counts_as.target] = counts.get(line.counts_as.target, 0) + line.count
    return Type2Report(
        period,
        counts,
        source=source,
        claimed_team=team or None,
        lines=tuple(lines),
        taxonomy=taxonomy.canonical,
    )


def _split_headers(check: _Check) -> tuple[dict[str, Field], list[Field]]:
    headers: dict[str, Field] = {}
    body: list[Field] = []
    for item in check.draft.fields:
        name = normalise_key(item.key)
        if name not in (PERIOD_KEY, TEAM_KEY, TAXONOMY_KEY):
            body.append(item)
        elif name in headers:
            check.fail(item.line, f'"{name}" is given twice{_first_at(headers[name].line)}')
        else:
            headers[name] = item
    return headers, body


def _first_at(line: int | None) -> str:
    return f" (first on line {line})" if line else ""


def _period(item: Field | None, today: date, check: _Check) -> str | None:
    if item is None:
        check.fail(check.draft.line, "the period is missing; give the month as YYYY-MM")
        return None
    written = item.value.strip()
    found = _PERIOD.fullmatch(written)
    year, month = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not 1 <= month <= 12 or year < FIRST_YEAR:
        check.fail(
            item.line,
            f'the period "{clip(written)}" is not a month written as YYYY-MM, e.g. 2026-10',
        )
        return None
    if (year, month) > (today.year, today.month):
        check.fail(
            item.line,
            f"the period {written} is in the future; reports can be sent"
            " for the current month or earlier months",
        )
        return None
    return written


def _number(item: Field, name: str, pattern: re.Pattern[str], check: _Check) -> Decimal | None:
    written = item.value.strip()
    if pattern.fullmatch(written) and len(written.partition(".")[0]) <= MAX_DIGITS:
        return Decimal(written)
    if _NEGATIVE.match(written):
        check.fail(item.line, f'"{name}" must not be negative')
    elif pattern.fullmatch(written):
        check.fail(item.line, f'"{name}" is too large (more than {MAX_DIGITS} digits)')
    elif pattern is _HOURS:
        check.fail(
            item.line,
            f'"{name}" must be a number of hours with at most 2 decimal'
            f' places, like 940.5, not "{clip(written)}"',
        )
    else:
        check.fail(item.line, f'"{name}" must be a whole number, not "{clip(written)}"')
    return None


def _type1_values(body: list[Field], check: _Check) -> dict[str, Decimal]:
    values: dict[str, Decimal] = {}
    seen: dict[str, int | None] = {}
    for item in body:
        name = type1_field(item.key)
        wrong = misnumbered(item.key) if name is None else None
        if wrong is not None:
            check.fail(
                item.line,
                f'"{clip(item.key)}" has the wrong number: on the form it is'
                f' "{TYPE1_LABELS[wrong]}"',
            )
        elif name is None:
            check.fail(
                item.line,
                f'unknown field "{clip(item.key)}" in a type 1 report;'
                f" the fields are {', '.join(TYPE1_FIELDS)}",
            )
        elif name in seen:
            check.fail(item.line, f'"{name}" is given twice{_first_at(seen[name])}')
        else:
            seen[name] = item.line
            pattern = _HOURS if name == "hours-spent" else _COUNT
            number = _number(item, name, pattern, check)
            if number is not None:
                values[name] = number
    missing = [name for name in TYPE1_FIELDS if name not in seen]
    if missing:
        check.fail(check.draft.line, f"the type 1 report lacks {', '.join(missing)}")
    return values


def _type2_lines(
    body: list[Field], taxonomy: Taxonomy, written: Field | None, check: _Check
) -> list[CountLine]:
    """Each count line as sent and as it counts, in report order."""
    vocabulary: str | None = None
    if written is not None:
        named = taxonomy.named(written.value)
        if named is None:
            check.fail(
                written.line,
                f'unknown taxonomy "{clip(written.value)}"; use {" or ".join(taxonomy.ids())}',
            )
            return []
        vocabulary = named.id
    lines: list[CountLine] = []
    seen: dict[Classification, int | None] = {}
    for item in body:
        match = _category(item, taxonomy, vocabulary, check)
        if match is None:
            continue
        same = taxonomy.equivalents(match.sent)
        clash = next((c for c in same if c in seen), None)
        if clash is not None:
            check.fail(item.line, f'"{clip(item.key)}" is counted twice{_first_at(seen[clash])}')
            continue
        seen.update(dict.fromkeys(same, item.line))
        number = _number(item, clip(item.key), _COUNT, check)
        if number is not None:
            lines.append(CountLine(match.sent, match.counts_as, int(number), match.exact))
    if not body:
        check.fail(
            check.draft.line,
            'the type 2 report has no counts; send at least one line such as "Other: 0"',
        )
    return lines


def _category(
    item: Field, taxonomy: Taxonomy, vocabulary: str | None, check: _Check
) -> Match | None:
    class_name, slash, type_name = item.key.partition("/")
    written_type = type_name.strip() if slash and type_name.strip() else None
    match = taxonomy.lookup(class_name, written_type, vocabulary)
    if match is not None:
        return match
    searched = taxonomy.vocabularies
    if vocabulary is not None:
        searched = (taxonomy.vocabulary(vocabulary),)
    if not taxonomy.knows_class(class_name, vocabulary):
        first, *others = searched  # the other vocabularies named only: replies stay short
        known = f"{', '.join(cls.name for cls in first.classes)} ({first.name})"
        known += "".join(f", and those of {other.name}" for other in others)
        check.fail(
            item.line, f'unknown incident class "{clip(class_name)}"; the classes are {known}'
        )
    else:
        check.fail(
            item.line,
            f'unknown incident type "{clip(written_type or "")}" in class "{clip(class_name)}"',
        )
    return None
