"""Charts for the statistics PDFs, drawn with reportlab.graphics: lines for trends,
bars for distributions, stacked bars for class shares.

In: labels and plain numbers (floats: charts only show what the tables state exactly).
Out: `Drawing` flowables that fit the page frame of `reports/pdf.py`. A missing value
(a month below the publication threshold) leaves a gap in a trend line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reportlab.graphics.charts.axes import XCategoryAxis
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, Group, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Table, TableStyle

from reports.fonts import BOLD, REGULAR
from reports.layout import ACCENT, MARK, MUTED, NAVY, RULE, STRIPE

# Tableau 10: distinguishable, and still apart when printed in grey.
PALETTE = tuple(
    colors.HexColor(c)
    for c in (
        "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
        "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
    )
)  # fmt: skip
_FONT = REGULAR
_LABEL_GAP = 2.0  # points between two bar labels


def _axis_number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def _title(drawing: Drawing, text: str) -> None:
    drawing.add(String(0, drawing.height - 10, text, fontName=BOLD, fontSize=8.5, fillColor=NAVY))


def _empty(drawing: Drawing, text: str) -> Drawing:
    box = Rect(0, 0, drawing.width, drawing.height - 18, fillColor=STRIPE, strokeColor=None)
    drawing.add(box)
    drawing.add(
        String(
            drawing.width / 2,
            (drawing.height - 18) / 2,
            text,
            fontName=_FONT,
            fontSize=7.5,
            fillColor=MUTED,
            textAnchor="middle",
        )
    )
    return drawing


def _value_axis(axis: Any, top: float) -> None:
    axis.valueMin = 0
    if top <= 0:
        axis.valueMax = 1
    axis.labels.fontName = _FONT
    axis.labels.fontSize = 6.5
    axis.labelTextFormat = _axis_number
    axis.visibleGrid = 1
    axis.gridStrokeColor = RULE
    axis.gridStrokeWidth = 0.3
    axis.strokeColor = MUTED
    axis.maximumTicks = 6


def trend_chart(
    title: str, months: Sequence[str], values: Sequence[float | None], width: float, height: float
) -> Drawing:
    """A line over 12 months; a value of None (not published) leaves a gap."""
    drawing = Drawing(width, height)
    _title(drawing, title)
    if all(v is None for v in values):
        return _empty(drawing, "not published in these months")
    chart = HorizontalLineChart()
    chart.x, chart.y = 34, 24
    chart.width, chart.height = width - 40, height - 24 - 18
    chart.data = _segments(values)
    for index in range(len(chart.data)):
        chart.lines[index].strokeColor = ACCENT
        chart.lines[index].strokeWidth = 1.4
        chart.lines[index].symbol = makeMarker("FilledCircle", size=3, fillColor=ACCENT)
    chart.joinedLines = 1
    chart.categoryAxis.categoryNames = list(months)
    chart.categoryAxis.labels.fontName = _FONT
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.labels.boxAnchor = "n"
    chart.categoryAxis.labels.leading = 7
    chart.categoryAxis.strokeColor = MUTED
    _value_axis(chart.valueAxis, max(v for v in values if v is not None))
    drawing.add(chart)
    return drawing


def _segments(values: Sequence[float | None]) -> list[list[float | None]]:
    """One series per unbroken run of values, so that missing months are gaps."""
    segments: list[list[float | None]] = []
    current: list[float | None] | None = None
    for index, value in enumerate(values):
        if value is None:
            current = None
            continue
        if current is None:
            current = [None] * len(values)
            segments.append(current)
        current[index] = value
    return segments


def bar_chart(
    title: str,
    names: Sequence[str],
    values: Sequence[float],
    width: float,
    height: float,
    *,
    marked: int | None = None,
) -> Drawing:
    """One bar per name (a team's value); the `marked` bar in the reader's colour.

    Names are printed under their bars where they fit side by side, else every few bars.
    """
    drawing = Drawing(width, height)
    _title(drawing, title)
    if not values:
        return _empty(drawing, "no figures")
    chart = VerticalBarChart()
    chart.x, chart.y = 34, 18
    chart.width, chart.height = width - 40, height - 18 - 20
    chart.data = [list(values)]
    # Bars at most 28 pt wide: a handful of teams should not look like a wall.
    slot = chart.width / len(values)
    chart.barWidth = min(slot * 0.75, 28)
    chart.groupSpacing = slot - chart.barWidth
    chart.bars.strokeColor = None
    chart.bars[0].fillColor = ACCENT
    if marked is not None:
        # Only the marked bar gets a style of its own: for each bar with one, reportlab
        # builds and merges a property object when it draws the bar.
        chart.bars[(0, marked)].fillColor = MARK
    chart.categoryAxis = _SparseCategoryAxis()
    font_size = 6.5 if len(names) <= 16 else 5
    chart.categoryAxis.categoryNames = _legible(names, slot, font_size)
    chart.categoryAxis.labels.fontName = _FONT
    chart.categoryAxis.labels.fontSize = font_size
    chart.categoryAxis.strokeColor = MUTED
    _value_axis(chart.valueAxis, max(values))
    drawing.add(chart)
    return drawing


def _legible(names: Sequence[str], slot: float, font_size: float) -> list[str]:
    """The names to print under bars `slot` wide: all where they fit side by side, else
    every n-th (the first included) and the others blank, so that none overlap.

    With a bar per team, a few dozen teams already squeeze the letters into a smear.
    """
    widest = max((stringWidth(name, _FONT, font_size) for name in names), default=0)
    step = max(1, math.ceil((widest + _LABEL_GAP) / slot))
    return [name if index % step == 0 else "" for index, name in enumerate(names)]


class _SparseCategoryAxis(XCategoryAxis):  # type: ignore[misc]  # reportlab is untyped
    """reportlab's x category axis, making no label at all for a blank category name.

    reportlab builds, measures and draws a label for every category, blank or not: for
    a chart of a thousand teams' bars that was three quarters of its time. Labels
    that are made sit where reportlab puts them (`makeTickLabels`, without the
    reversed direction and per-value offsets, which these charts do not use).
    """

    def makeTickLabels(self) -> Group:  # noqa: N802 - reportlab's name
        names = self.categoryNames
        if not names or all(names):
            return super().makeTickLabels()
        group = Group()
        y = self._labelAxisPos()
        for index, name in enumerate(names):
            if name:
                label = self.labels[index]
                label.setOrigin(self._x + (index + label.labelPosFrac) * self._barWidth, y)
                label.setText(name)
                group.add(label)
        return group


def class_bars(
    title: str, labels: Sequence[str], values: Sequence[float], width: float, height: float
) -> Drawing:
    """Horizontal bars, one per class, top to bottom in the given order."""
    drawing = Drawing(width, height)
    _title(drawing, title)
    chart = HorizontalBarChart()
    chart.x, chart.y = 120, 14
    chart.width, chart.height = width - 150, height - 14 - 22
    chart.data = [list(reversed(values))]
    chart.bars.strokeColor = None
    chart.bars[0].fillColor = ACCENT
    chart.barLabelFormat = _axis_number
    chart.barLabels.fontName = _FONT
    chart.barLabels.fontSize = 6.5
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    chart.categoryAxis.categoryNames = list(reversed(labels))
    chart.categoryAxis.labels.fontName = _FONT
    chart.categoryAxis.labels.fontSize = 7.5
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.strokeColor = MUTED
    _value_axis(chart.valueAxis, max(values, default=0))
    drawing.add(chart)
    return drawing


def share_chart(
    title: str,
    names: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    width: float,
    height: float,
) -> Drawing:
    """Stacked horizontal bars, one per team: each class's share of its incidents (%)."""
    drawing = Drawing(width, height)
    _title(drawing, title)
    legend_height = 14 * ((len(series) + 2) // 3) + 6
    chart = HorizontalBarChart()
    chart.x, chart.y = 70, legend_height + 14
    chart.width, chart.height = width - 80, height - legend_height - 14 - 22
    chart.data = [list(reversed(values)) for _, values in series]
    chart.categoryAxis.style = "stacked"
    chart.categoryAxis.categoryNames = list(reversed(names))
    chart.categoryAxis.labels.fontName = _FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.strokeColor = MUTED
    chart.bars.strokeColor = colors.white
    chart.bars.strokeWidth = 0.3
    for index in range(len(series)):
        chart.bars[index].fillColor = PALETTE[index % len(PALETTE)]
    _value_axis(chart.valueAxis, 100)
    chart.valueAxis.valueMax = 100
    chart.valueAxis.valueStep = 20
    chart.valueAxis.labelTextFormat = "%d %%"
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = chart.x, legend_height - 4
    legend.alignment = "right"
    legend.columnMaximum = (len(series) + 2) // 3
    legend.deltax = (width - chart.x) / 3
    legend.fontName = _FONT
    legend.fontSize = 7
    legend.dx = legend.dy = 6
    legend.colorNamePairs = [
        (PALETTE[i % len(PALETTE)], label) for i, (label, _) in enumerate(series)
    ]
    drawing.add(legend)
    return drawing


def grid(drawings: Sequence[Flowable], columns: int = 2) -> Table:
    """Small charts side by side, `columns` to a row."""
    rows = [list(drawings[i : i + columns]) for i in range(0, len(drawings), columns)]
    if rows and len(rows[-1]) < columns:
        rows[-1] += [""] * (columns - len(rows[-1]))
    table = Table(rows, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 14),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 12),
            ]
        )
    )
    return table
