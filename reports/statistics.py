"""The monthly figures: averages over contributing teams, trends, pseudonymous rows.

In: the newest revision of every (team, type, period) in the 12 months ending with the
report period (`store.statistics.newest_reports`), the taxonomy (type 2 figures are in its
canonical vocabulary), the publication threshold and the pseudonym secret. Out: a
`MonthlyStatistics`, the one value every PDF, the CSV and the mails are rendered from.
Pure: no database, no files, no clock.

The rules (docs/statistics.md explains them to readers of the reports):
- Only the newest revision of (team, type, period) counts; earlier ones are ignored.
- A team contributes to a type for a month when it has a stored report of that type for
  that month. Every figure of that type then averages over exactly those teams: type 1
  fields are all required, and a type 2 category a team did not list counts as 0 for it,
  since each incident is counted once under its primary class/type.
- An average is kept exact (`Figure.mean`, a Fraction of the exact Decimal total) and
  rounded half-up to two decimals only for display (`Figure.rounded`).
- A figure is published (public PDF and CSV) only where at least `minimum` teams
  contributed; the trend leaves such months empty.
- Type 2 figures: every class (its class-only line plus all its types), each type, the
  class-only line of classes that have types ("type not given"), and all incidents, in
  the canonical vocabulary. Each stored count is counted from what the team sent, so
  that changing the canonical vocabulary recomputes earlier months too; a count sent in
  the other vocabulary counts as what the mapping says (never more than was sent).
- Pseudonyms ("Team A", "Team B", ...) are handed out per report (period and type) in
  the order of HMAC-SHA256(secret, "period:type:team id"): stable for the same inputs
  and secret, unrelated to handles or to the order teams registered, and unlinkable
  from one month or type to the next without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from parsers.model import TYPE1_FIELDS, Classification
from parsers.taxonomy import Taxonomy
from reports.periods import window
from store.statistics import Category, StoredReport

TYPES = ("type1", "type2")
TYPE_TITLES = {
    "type1": "Type 1: incident handling workload",
    "type2": "Type 2: incidents by class and type",
}
TOTAL = "total"  # type 2: all incidents
ZERO = Decimal(0)
UNTYPED = "-"  # type 2: "class/-" is the class-only line (no type given)
TYPE1_LABELS = {
    "requests": "Requests",
    "incidents-opened": "Incidents opened",
    "incidents-closed": "Incidents closed",
    "inbound-communication": "Inbound incident communication",
    "outbound-communication": "Outbound incident communication",
    "organisations-involved": "Organisations involved",
    "hours-spent": "Hours spent",
}


@dataclass(frozen=True)
class Line:
    """One figure of a type: its key ("requests", "intrusions/dos", ...), label, depth."""

    key: str
    label: str
    depth: int = 0  # 1: a type 2 type or class-only line, shown under its class


@dataclass(frozen=True)
class Figure:
    """One average for one month: the exact total over the teams that contributed."""

    key: str
    period: str
    total: Decimal
    teams: int
    minimum: int

    @property
    def published(self) -> bool:
        return self.teams >= self.minimum and self.teams > 0

    @property
    def mean(self) -> Fraction | None:
        """The exact average, or None when no team contributed."""
        return Fraction(self.total) / self.teams if self.teams else None

    def rounded(self, places: int = 2) -> Decimal | None:
        """The average rounded half-up for display (None when no team contributed)."""
        mean = self.mean
        return None if mean is None else round_half_up(mean, places)


def round_half_up(value: Fraction, places: int = 2) -> Decimal:
    """`value` to `places` decimals, halves away from zero, computed exactly."""
    scaled = abs(value) * 10**places
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    return Decimal(-whole if value < 0 else whole).scaleb(-places)


@dataclass(frozen=True)
class TeamRow:
    """One contributing team's figures in an internal report, under its pseudonym."""

    team_id: int
    team: str  # handle: never rendered into the internal PDFs
    pseudonym: str
    revision: int
    values: dict[str, Decimal]  # figure key -> value


@dataclass(frozen=True)
class TypeStatistics:
    """Everything about one report type for the report month and its 12-month window."""

    type: str
    period: str
    lines: tuple[Line, ...]
    months: tuple[str, ...]  # oldest first, ending with `period`
    trend: dict[str, tuple[Figure, ...]]  # key -> one figure per month of `months`
    rows: tuple[TeamRow, ...]  # the report month's teams, in pseudonym order

    def current(self, key: str) -> Figure:
        return self.trend[key][-1]

    @property
    def teams(self) -> int:
        return len(self.rows)

    def row_of(self, team_id: int) -> TeamRow | None:
        return next((row for row in self.rows if row.team_id == team_id), None)


@dataclass(frozen=True)
class MonthlyStatistics:
    period: str
    minimum: int
    type1: TypeStatistics
    type2: TypeStatistics
    taxonomy: str = "ecsirt-v2"  # the vocabulary of the type 2 figures
    taxonomy_label: str = ""  # as outputs name it, with its version

    def of(self, report_type: str) -> TypeStatistics:
        return self.type1 if report_type == "type1" else self.type2


def compute(
    reports: Iterable[StoredReport],
    period: str,
    taxonomy: Taxonomy,
    *,
    minimum: int,
    secret: bytes,
) -> MonthlyStatistics:
    """The statistics for `period` from the newest revisions of its 12-month window."""
    months = window(period)
    by_type: dict[str, list[StoredReport]] = {name: [] for name in TYPES}
    for report in reports:
        if report.period in months and report.type in by_type:
            by_type[report.type].append(report)
    recount = Recount(taxonomy)
    type2_counts = [recount(report) for report in by_type["type2"]]
    type1_values = [dict(report.type1) for report in by_type["type1"]]
    type2_values = [_type2_values(counts) for counts in type2_counts]
    type1_lines = tuple(Line(name, TYPE1_LABELS[name]) for name in TYPE1_FIELDS)
    type2_lines = _type2_lines(taxonomy, type2_counts)
    return MonthlyStatistics(
        period,
        minimum,
        _type_statistics("type1", period, months, type1_lines, by_type["type1"], type1_values,
                         minimum, secret),
        _type_statistics("type2", period, months, type2_lines, by_type["type2"], type2_values,
                         minimum, secret),
        taxonomy=taxonomy.canonical,
        taxonomy_label=taxonomy.canonical_vocabulary.full_name,
    )  # fmt: skip


class Recount:
    """A stored report's type 2 counts in the canonical vocabulary, counted from what was
    sent (what was stored only where what was sent is no longer known).

    Reports built without their counts as sent (`type2_counts` empty) are taken as they
    are. One mapping per distinct (sent, stored) pair: a window has many thousands of
    counts naming a few dozen categories.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = taxonomy
        self._seen: dict[tuple[Classification, Classification], Category] = {}

    def __call__(self, report: StoredReport) -> dict[Category, int]:
        if not report.type2_counts:
            return dict(report.type2)
        found: dict[Category, int] = {}
        for stored in report.type2_counts:
            pair = (stored.sent, stored.counted)
            target = self._seen.get(pair)
            if target is None:
                target = self._seen[pair] = self._taxonomy.counts_as(*pair).target
            found[target] = found.get(target, 0) + stored.count
        return found


def _type_statistics(
    report_type: str,
    period: str,
    months: tuple[str, ...],
    lines: tuple[Line, ...],
    reports: Sequence[StoredReport],
    values: Sequence[dict[str, Decimal]],
    minimum: int,
    secret: bytes,
) -> TypeStatistics:
    totals, teams = _month_totals(reports, values, months)
    trend: dict[str, tuple[Figure, ...]] = {}
    for line in lines:
        trend[line.key] = tuple(
            Figure(line.key, month, totals[month].get(line.key, ZERO), teams[month], minimum)
            for month in months
        )
    current = [(r, v) for r, v in zip(reports, values, strict=True) if r.period == period]
    names = pseudonyms([r.team_id for r, _ in current], secret, period, report_type)
    rows = sorted(
        (TeamRow(r.team_id, r.team, names[r.team_id], r.revision, v) for r, v in current),
        key=lambda row: _pseudonym_order(row.pseudonym),
    )
    return TypeStatistics(report_type, period, lines, months, trend, tuple(rows))


def _month_totals(
    reports: Sequence[StoredReport],
    values: Sequence[dict[str, Decimal]],
    months: tuple[str, ...],
) -> tuple[dict[str, dict[str, Decimal]], dict[str, int]]:
    """Per month: the total of each figure key over the month's reports, and their number.

    One pass over each report's own keys: summing each figure over every report instead
    cost lines x months x teams look-ups, most of them for categories nobody reported.
    A key no report of the month has is missing (its total is 0).
    """
    totals: dict[str, dict[str, Decimal]] = {month: {} for month in months}
    teams = dict.fromkeys(months, 0)
    for report, figures in zip(reports, values, strict=True):
        month = totals[report.period]
        teams[report.period] += 1
        for key, value in figures.items():
            month[key] = month.get(key, ZERO) + value
    return totals, teams


def _type2_values(counts: dict[Category, int]) -> dict[str, Decimal]:
    """Figure key -> value of one type 2 report: categories, class totals, total."""
    values: dict[str, Decimal] = {TOTAL: Decimal(0)}
    for (class_slug, type_slug), count in counts.items():
        number = Decimal(count)
        values[TOTAL] += number
        values[class_slug] = values.get(class_slug, Decimal(0)) + number
        key = f"{class_slug}/{type_slug or UNTYPED}"
        values[key] = values.get(key, Decimal(0)) + number
    return values


def _type2_lines(taxonomy: Taxonomy, reports: Sequence[dict[Category, int]]) -> tuple[Line, ...]:
    """All incidents, then each class with its "type not given" line and its types.

    Categories that stored reports use but the taxonomy no longer lists (a dropped
    extension) are kept, after the others, labelled by their slugs.
    """
    lines = [Line(TOTAL, "All incidents")]
    known: set[Category] = set()
    for cls in taxonomy.classes:
        lines.append(Line(cls.slug, cls.name))
        known.add((cls.slug, None))
        if cls.types:
            lines.append(Line(f"{cls.slug}/{UNTYPED}", f"{cls.name} (type not given)", 1))
        for typ in cls.types:
            lines.append(Line(f"{cls.slug}/{typ.slug}", typ.name, 1))
            known.add((cls.slug, typ.slug))
    classes = {cls.slug for cls in taxonomy.classes}
    stray = sorted({c for r in reports for c in r if c not in known}, key=str)
    for class_slug, type_slug in stray:
        if class_slug not in classes:
            classes.add(class_slug)
            lines.append(Line(class_slug, taxonomy.label((class_slug, None))))
            lines.append(Line(f"{class_slug}/{UNTYPED}", f"{class_slug} (type not given)", 1))
        if type_slug is not None:
            label = taxonomy.label((class_slug, type_slug)).rpartition(" / ")[2]
            lines.append(Line(f"{class_slug}/{type_slug}", label, 1))
    return tuple(lines)


def pseudonyms(
    team_ids: Iterable[int], secret: bytes, period: str, report_type: str
) -> dict[int, str]:
    """Team id -> "Team A", "Team B", ... in the order of a keyed hash of the id."""

    def order(team_id: int) -> bytes:
        message = f"{period}:{report_type}:{team_id}".encode()
        return hmac.new(secret, message, hashlib.sha256).digest()

    ranked = sorted(set(team_ids), key=order)
    return {team_id: f"Team {_letters(index)}" for index, team_id in enumerate(ranked)}


def _letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, ... (spreadsheet column names)."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _pseudonym_order(pseudonym: str) -> tuple[int, str]:
    letters = pseudonym.removeprefix("Team ")
    return len(letters), letters
