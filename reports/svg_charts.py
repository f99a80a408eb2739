"""The geometry of the site's charts: where each line, dot, bar and label of an inline SVG
goes. The site's templates draw them (`reports/templates/site/charts.html.j2`).

In: labels and exact values (a value of None is a month that is not published). Out:
frozen values in SVG user units, for a `viewBox` of `WIDTH` x the chart's height that
the page scales to its column. Values become floats here only to be placed: every
number a reader sees is the figure's own text, the same as in the table beside the
chart. A missing value leaves a gap in a trend line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from reports.periods import month_name, parse_period

WIDTH = 480
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str  # "October 2026: 375.00": the dot's tooltip


@dataclass(frozen=True)
class AxisLabel:
    x: float
    lines: tuple[str, ...]  # "Oct", and the year below in January and on the first
    minor: bool = False  # every other label without a year: a phone-wide chart omits it


@dataclass(frozen=True)
class LineChart:
    height: int
    left: float
    right: float
    top: float
    bottom: float  # y of the x axis
    ticks: tuple[Tick, ...]
    segments: tuple[tuple[Dot, ...], ...]  # unbroken runs of published months
    labels: tuple[AxisLabel, ...]

    @property
    def empty(self) -> bool:
        return not self.segments

    def path(self, segment: Sequence[Dot]) -> str:
        """An SVG path through the segment's dots ("M x y L x y ...")."""
        return " ".join(
            f"{'M' if i == 0 else 'L'}{dot.x:.1f} {dot.y:.1f}" for i, dot in enumerate(segment)
        )


@dataclass(frozen=True)
class Bar:
    y: float
    width: float
    label: str
    value: str


@dataclass(frozen=True)
class BarChart:
    height: int
    left: float  # x where bars start (labels end left of it)
    bar_height: float
    bars: tuple[Bar, ...]


def trend(
    periods: Sequence[str],
    values: Sequence[Fraction | None],
    shown: Sequence[str],
    *,
    height: int = 250,
) -> LineChart:
    """A line over `periods` (oldest first); `shown` is each value's text for tooltips."""
    left, right, top, bottom = 56.0, WIDTH - 14.0, 12.0, height - 38.0
    top_value, ticks = _scale([v for v in values if v is not None])
    slot = (right - left) / max(len(periods), 1)

    def place(index: int, value: Fraction) -> Dot:
        x = left + (index + 0.5) * slot
        y = bottom - (bottom - top) * float(value / top_value)
        return Dot(round(x, 1), round(y, 1), f"{month_name(periods[index])}: {shown[index]}")

    segments: list[tuple[Dot, ...]] = []
    run: list[Dot] = []
    for index, value in enumerate(values):
        if value is None:
            if run:
                segments.append(tuple(run))
            run = []
        else:
            run.append(place(index, value))
    if run:
        segments.append(tuple(run))
    tick_marks = tuple(
        Tick(round(bottom - (bottom - top) * float(t / top_value), 1), _number(t)) for t in ticks
    )
    return LineChart(
        height, left, right, top, bottom, tick_marks, tuple(segments), _axis(periods, left, slot)
    )


def bars(labels: Sequence[str], values: Sequence[Fraction], shown: Sequence[str]) -> BarChart:
    """Horizontal bars, one per label, top to bottom; the value's text after each bar."""
    left, row, value_room = 204.0, 24.0, 64.0
    top_value, _ = _scale(list(values))
    room = WIDTH - left - value_room
    placed = tuple(
        Bar(round(6 + i * row, 1), round(room * float(v / top_value), 1), label, text)
        for i, (label, v, text) in enumerate(zip(labels, values, shown, strict=True))
    )
    return BarChart(int(12 + row * len(placed)), left, row - 8, placed)


def _scale(values: Sequence[Fraction]) -> tuple[Fraction, tuple[Fraction, ...]]:
    """The axis top and its ticks: 0 up to a "nice" step (1, 2, 2.5 or 5 x 10^n) times 4
    or so, at least as high as the largest value."""
    largest = max(values, default=Fraction(0))
    if largest <= 0:
        return Fraction(1), (Fraction(0), Fraction(1))
    raw = largest / 4
    power = Fraction(10) ** math.floor(math.log10(raw))
    step = next(m * power for m in (Fraction(1), Fraction(2), Fraction(5, 2), Fraction(5), 10)
                if m * power >= raw)  # fmt: skip
    count = math.ceil(largest / step)
    return step * count, tuple(step * i for i in range(count + 1))


def _number(value: Fraction) -> str:
    if value.denominator == 1:
        return f"{value.numerator:,}"
    return f"{float(value):,.1f}"


def _axis(periods: Sequence[str], left: float, slot: float) -> tuple[AxisLabel, ...]:
    """Month names under the dots; every n-th where more than 12 would crowd."""
    step = max(1, math.ceil(len(periods) / 12))
    labels = []
    for index in range(0, len(periods), step):
        year, month = parse_period(periods[index])
        name = _MONTHS[month - 1]
        lines = (name, str(year)) if index == 0 or month <= step else (name,)
        last = index + step >= len(periods)  # the newest month keeps its name
        minor = len(lines) == 1 and (index // step) % 2 == 1 and not last
        labels.append(AxisLabel(round(left + (index + 0.5) * slot, 1), lines, minor))
    return tuple(labels)
