"""The public statistics PDF: per type 1 field and per type 2 class/type, the average
per contributing team, the number of teams, and a 12-month trend.

In: a `MonthlyStatistics`, the clearinghouse name, a line saying how current the data
is. Out: PDF bytes, safe to publish as they are: nothing but published averages and
team counts appears in it. A figure with fewer contributing teams than the threshold is
shown as "not published", and its month is a gap in the trend.
"""

from __future__ import annotations

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, KeepTogether, PageBreak, Spacer

from reports.charts import class_bars, grid, trend_chart
from reports.layout import BODY_WIDTH, average, notice, p, table
from reports.pdf import DocumentMeta, render
from reports.periods import axis_label, month_name
from reports.statistics import TOTAL, TYPE_TITLES, Figure, Line, MonthlyStatistics, TypeStatistics
from reports.taxonomy_labels import taxonomy_caption

NOT_PUBLISHED = "not published"
_CHART_WIDTH = BODY_WIDTH / 2 - 7
_CHART_HEIGHT = 104
_NUMBER = 3.4 * cm  # width of a number column


def public_pdf(stats: MonthlyStatistics, clearinghouse: str, as_of: str) -> bytes:
    meta = DocumentMeta(
        clearinghouse=clearinghouse,
        title="Public statistics",
        period=stats.period,
        classification="PUBLIC",
        facts=[
            ("Period", f"{month_name(stats.period)} ({stats.period})"),
            ("Type 1: workload", _contributed(stats.type1, stats.minimum)),
            ("Type 2: incidents", _contributed(stats.type2, stats.minimum)),
            ("Publication threshold", f"at least {stats.minimum} contributing teams per figure"),
            ("Data", as_of),
        ],
        introduction=(
            "Every figure is an average per team: the sum of what the contributing teams "
            "reported for the month, divided by the number of those teams. Only the newest "
            "revision of each team's report counts. Averages are rounded to two decimals.\n\n"
            f"A figure is published only where at least {stats.minimum} teams contributed; "
            'otherwise it reads "not published" and its month is left empty in the trend '
            "charts. The reports the teams submitted are never published."
        ),
    )
    body = [
        *_section(stats.type1, stats.minimum),
        PageBreak(),
        *_section(stats.type2, stats.minimum, taxonomy_caption(stats)),
    ]
    return render(meta, body)


def _contributed(stats: TypeStatistics, minimum: int) -> str:
    teams = f"{stats.teams} team{'s' if stats.teams != 1 else ''} contributed"
    if stats.teams >= minimum:
        return f"{teams}: published"
    return f"{teams}: not published (at least {minimum} needed)"


def shown(figure: Figure) -> str:
    if not figure.teams:
        return "no reports"
    return average(figure.rounded()) if figure.published else NOT_PUBLISHED


def _section(stats: TypeStatistics, minimum: int, caption: str | None = None) -> list[Flowable]:
    """One type's figures; `caption` (type 2: the taxonomy and its version) under the title."""
    flow: list[Flowable] = [p(TYPE_TITLES[stats.type], "h1")]
    if caption is not None:
        flow += [p(caption, "note"), Spacer(1, 6)]
    published = stats.teams >= minimum and stats.teams > 0
    if not published:
        flow += [
            notice(
                f"Not published for {month_name(stats.period)}: {stats.teams} "
                f"team{'s' if stats.teams != 1 else ''} contributed, at least {minimum} "
                "are needed."
            ),
            Spacer(1, 8),
        ]
    if published and stats.type == "type2":
        flow += [_class_chart(stats), Spacer(1, 6)]
    flow += [_figures_table(stats, published), Spacer(1, 6)]
    if not any(f.published for f in stats.trend[stats.lines[0].key]):
        months = f"{month_name(stats.months[0])} to {month_name(stats.months[-1])}"
        note = f"No month from {months} had enough contributing teams for a trend."
        return [*flow, p("Trend over 12 months", "h2"), p(note)]
    trend = _trend_grid(stats)
    heading = [
        p("Trend over 12 months", "h2"),
        p(
            f"Average per team by month. Months in which fewer than {minimum} teams "
            "contributed are left empty.",
            "note",
        ),
        Spacer(1, 6),
    ]
    return [*flow, KeepTogether([*heading, trend[0]]), *trend[1:]]


def _shown_lines(stats: TypeStatistics, published: bool) -> list[Line]:
    """Type 1: every field. Type 2: total and classes; types only where not zero."""
    if stats.type == "type1":
        return list(stats.lines)
    lines = []
    for line in stats.lines:
        if line.depth == 0:
            lines.append(line)
            continue
        recent = stats.trend[line.key][-2:]
        if published and any(f.published and f.total for f in recent):
            lines.append(line)
    return lines


def _figures_table(stats: TypeStatistics, published: bool) -> Flowable:
    lines = _shown_lines(stats, published)
    rows = []
    for line in lines:
        current, previous = stats.trend[line.key][-1], stats.trend[line.key][-2]
        rows.append([line.label, shown(current), str(current.teams), shown(previous)])
    label = "Field" if stats.type == "type1" else "Class / type"
    return table(
        [label, "Average per team", "Teams", month_name(stats.months[-2])],
        rows,
        [BODY_WIDTH - 3 * _NUMBER, _NUMBER, _NUMBER, _NUMBER],
        bold=[i for i, line in enumerate(lines) if stats.type == "type2" and line.depth == 0],
        indented=[i for i, line in enumerate(lines) if line.depth == 1],
    )


def _class_chart(stats: TypeStatistics) -> Flowable:
    classes = [line for line in stats.lines if line.depth == 0 and line.key != TOTAL]
    values = [float(stats.current(line.key).mean or 0) for line in classes]
    return class_bars(
        f"Average incidents per team by class, {month_name(stats.period)}",
        [line.label for line in classes],
        values,
        BODY_WIDTH,
        26 + 17 * len(classes),
    )


def _trend_grid(stats: TypeStatistics) -> list[Flowable]:
    """One small line chart per figure (type 2: all incidents and each class), 2 a row."""
    lines = [line for line in stats.lines if line.depth == 0]
    months = [axis_label(m, i == 0) for i, m in enumerate(stats.months)]
    charts = [
        trend_chart(
            line.label,
            months,
            [float(f.mean or 0) if f.published else None for f in stats.trend[line.key]],
            _CHART_WIDTH,
            _CHART_HEIGHT,
        )
        for line in lines
    ]
    return [grid(charts[i : i + 2]) for i in range(0, len(charts), 2)]
