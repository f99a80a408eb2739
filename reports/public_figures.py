"""The public part of a month's statistics: the one gate everything published goes through.

In: a `MonthlyStatistics` and the time its monthly run generated it. Out: a `PublicMonth`
that holds what `public.pdf` may show and nothing else: per report type the number of
contributing teams, and per figure its label, its number of teams, whether it is
published and, only then, its exact average. No team rows, handles, names or pseudonyms
cross this gate, and a figure below the publication threshold carries no value at all,
so a page, a JSON file or a feed made from a `PublicMonth` cannot leak one.

Pure: no clock, no files. The site (`reports/site.py`) and `public.json`
(`reports/public_json.py`) are rendered from these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from reports.statistics import (
    TYPE_TITLES,
    TYPES,
    Figure,
    MonthlyStatistics,
    TypeStatistics,
    round_half_up,
)

NOT_PUBLISHED = "not published"
NO_REPORTS = "no reports"


@dataclass(frozen=True)
class PublicFigure:
    """One figure of one month as it may be published."""

    key: str  # the stable figure key of public.csv: "requests", "total", "intrusions/dos"
    label: str
    depth: int  # 1: a type 2 type or "type not given" line, shown under its class
    period: str
    teams: int
    mean: Fraction | None  # the exact average, only where published

    @property
    def published(self) -> bool:
        return self.mean is not None

    @property
    def rounded(self) -> Decimal | None:
        """Half-up to two decimals, as the PDF and the CSV show it."""
        return None if self.mean is None else round_half_up(self.mean, 2)

    @property
    def exact(self) -> str | None:
        return None if self.mean is None else exact_string(self.mean)

    @property
    def shown(self) -> str:
        """The text a reader sees: "1,204.33", "not published" or "no reports"."""
        rounded = self.rounded
        if rounded is not None:
            return f"{rounded:,.2f}"
        return NOT_PUBLISHED if self.teams else NO_REPORTS


@dataclass(frozen=True)
class PublicType:
    """One report type of one month, with its 12-month window."""

    type: str
    title: str
    teams: int  # contributing teams in the month
    published: bool  # enough teams for the month's figures to be published
    figures: tuple[PublicFigure, ...]  # the month's figures, in report order
    months: tuple[str, ...]  # the 12 months ending with the period, oldest first
    trend: dict[str, tuple[PublicFigure, ...]]  # figure key -> one per month of `months`

    def figure(self, key: str) -> PublicFigure:
        return self.trend[key][-1]

    def previous(self, key: str) -> PublicFigure:
        return self.trend[key][-2]

    def shown(self) -> tuple[PublicFigure, ...]:
        """The figures a month's table lists, as public.pdf does: every type 1 field;
        for type 2 all incidents and every class, and a type only where it was
        published and not zero in the month or the one before."""
        if self.type == "type1":
            return self.figures
        return tuple(
            f
            for f in self.figures
            if f.depth == 0 or (self.published and any(p.mean for p in self.trend[f.key][-2:]))
        )


@dataclass(frozen=True)
class PublicMonth:
    period: str
    minimum: int  # the publication threshold the figures were judged by
    generated_at: datetime  # the monthly run that produced them (UTC)
    type1: PublicType
    type2: PublicType
    taxonomy: str = ""  # the type 2 figures' taxonomy, as outputs name it (with its version)

    @property
    def types(self) -> tuple[PublicType, PublicType]:
        return self.type1, self.type2

    def of(self, report_type: str) -> PublicType:
        return self.type1 if report_type == "type1" else self.type2


def public_month(stats: MonthlyStatistics, generated_at: datetime) -> PublicMonth:
    """The publishable part of `stats` (see the module docstring)."""
    type1, type2 = (_public_type(stats.of(name), stats.minimum) for name in TYPES)
    return PublicMonth(
        stats.period, stats.minimum, generated_at, type1, type2, stats.taxonomy_label
    )


def _public_type(stats: TypeStatistics, minimum: int) -> PublicType:
    trend = {
        line.key: tuple(
            _public_figure(figure, line.label, line.depth) for figure in stats.trend[line.key]
        )
        for line in stats.lines
    }
    return PublicType(
        type=stats.type,
        title=TYPE_TITLES[stats.type],
        teams=stats.teams,
        published=stats.teams >= minimum and stats.teams > 0,
        figures=tuple(trend[line.key][-1] for line in stats.lines),
        months=stats.months,
        trend=trend,
    )


def _public_figure(figure: Figure, label: str, depth: int) -> PublicFigure:
    mean = figure.mean if figure.published else None
    return PublicFigure(figure.key, label, depth, figure.period, figure.teams, mean)


def exact_string(value: Fraction) -> str:
    """An exact average as text: its decimal expansion where that ends ("256.3125",
    "375"), else the reduced fraction ("1127/3"). Both parse exactly with Python's
    `fractions.Fraction`; rounding is left to the reader."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = value * 10**places  # an integer now
    text = f"{Decimal(scaled.numerator).scaleb(-places):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
