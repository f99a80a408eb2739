"""The internal statistics PDF of one report type: every contributing team's figures
under its pseudonym, with distribution charts.

In: a `MonthlyStatistics`, the type, the clearinghouse name and the reader: a team (its
row or column is marked, "your team") or None for the coordinators' copy (nothing
marked). Out: PDF bytes. Handles and team names never appear in it; the reader's own
name appears only on the title page of its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from reports.charts import bar_chart, grid, share_chart
from reports.layout import BODY_WIDTH, average, name, notice, number, p, table
from reports.pdf import DocumentMeta, render
from reports.periods import month_name
from reports.statistics import (
    TOTAL,
    TYPE_TITLES,
    Line,
    MonthlyStatistics,
    TeamRow,
    TypeStatistics,
)
from reports.taxonomy_labels import taxonomy_caption

CLASSIFICATION = "CONFIDENTIAL: contributing teams and coordinators only"
YOURS = " (your team)"
_TEAMS_PER_TABLE = 6
_TEAMS_PER_SHARE_CHART = 30  # about 560 pt of chart: one page at most
_SHORT = {
    "requests": "Requests",
    "incidents-opened": "Incidents opened",
    "incidents-closed": "Incidents closed",
    "inbound-communication": "Inbound comm.",
    "outbound-communication": "Outbound comm.",
    "organisations-involved": "Organi- sations",
    "hours-spent": "Hours spent",
}


@dataclass(frozen=True)
class Reader:
    """The team a personalised copy is for."""

    team_id: int
    name: str  # "CERT Alpha (alpha)", shown on the title page only


def internal_pdf(
    stats: MonthlyStatistics, report_type: str, clearinghouse: str, reader: Reader | None
) -> bytes:
    of_type = stats.of(report_type)
    own = of_type.row_of(reader.team_id) if reader else None
    copy_for = (
        f"{name(reader.name)}; your team appears as {own.pseudonym}, highlighted"
        if reader and own
        else "the coordinators; no team is marked"
    )
    meta = DocumentMeta(
        clearinghouse=clearinghouse,
        title=f"Internal statistics, type {report_type[-1]}",
        period=stats.period,
        classification=CLASSIFICATION,
        facts=[
            ("Period", f"{month_name(stats.period)} ({stats.period})"),
            ("Report", TYPE_TITLES[report_type]),
            ("Contributing teams", str(of_type.teams)),
            ("Copy for", copy_for),
        ],
        introduction=(
            "This report shows the figures of every team that submitted this type of "
            "statistics for the month, under pseudonyms (Team A, Team B, ...). The letters "
            "are assigned for this report alone by a keyed hash: they follow neither names "
            "nor registration order and change from month to month. Only the newest "
            "revision of each team's report counts.\n\n"
            "It is sent only to the teams that contributed and to the coordinators. "
            "Please do not pass it on."
        ),
    )
    if not of_type.rows:
        body: list[Flowable] = [
            notice(f"No team submitted type {report_type[-1]} statistics for this month.")
        ]
    elif report_type == "type1":
        body = _type1_body(of_type, own)
    else:
        body = _type2_body(of_type, own, taxonomy_caption(stats))
    return render(meta, body)


def _name(row: TeamRow, own: TeamRow | None) -> str:
    return row.pseudonym + (YOURS if own is not None and row.team_id == own.team_id else "")


def _mean(stats: TypeStatistics, key: str) -> str:
    return average(stats.current(key).rounded())


def _type1_body(stats: TypeStatistics, own: TeamRow | None) -> list[Flowable]:
    keys = [line.key for line in stats.lines]
    rows = [[_name(r, own), *(number(r.values.get(k, 0)) for k in keys)] for r in stats.rows]
    rows.append([f"Average ({stats.teams} teams)", *(_mean(stats, k) for k in keys)])
    first = 3.4 * cm
    widths = [first, *[(BODY_WIDTH - first) / len(keys)] * len(keys)]
    marked = [i for i, r in enumerate(stats.rows) if own and r.team_id == own.team_id]
    charts = [
        bar_chart(
            line.label,
            [r.pseudonym.removeprefix("Team ") for r in stats.rows],
            [float(r.values.get(line.key, 0)) for r in stats.rows],
            BODY_WIDTH / 2 - 7,
            106,
            marked=marked[0] if marked else None,
        )
        for line in stats.lines
    ]
    legend = "Each bar is one team, in table order, labelled by its letter where there is room"
    legend += "; your team's bar is orange." if own else "."
    return [
        p("Figures per team", "h1"),
        table(["Team", *(_SHORT[k] for k in keys)], rows, widths, marked=marked, footer_rows=1),
        Spacer(1, 10),
        KeepTogether([p("Distribution", "h2"), p(legend, "note"), Spacer(1, 6), grid(charts[:2])]),
        grid(charts[2:]),
    ]


def _type2_body(stats: TypeStatistics, own: TeamRow | None, caption: str) -> list[Flowable]:
    classes = [line for line in stats.lines if line.depth == 0 and line.key != TOTAL]
    names = [_name(r, own).replace(YOURS, " (you)") for r in stats.rows]
    series = [(line.label, [_share(r, line.key) for r in stats.rows]) for line in classes]
    marked = [i for i, r in enumerate(stats.rows) if own and r.team_id == own.team_id]
    flow: list[Flowable] = [
        p("Class distribution per team", "h1"),
        p(f"Share of each class in the team's incidents for the month. {caption}", "note"),
        Spacer(1, 4),
    ]
    # One chart per page-sized group of teams: a single chart for every team would grow
    # past the page (reportlab refuses it) once a few dozen teams contribute.
    for start in range(0, len(names), _TEAMS_PER_SHARE_CHART):
        chunk = slice(start, start + _TEAMS_PER_SHARE_CHART)
        part = [(label, values[chunk]) for label, values in series]
        height = 60 + 16 * len(names[chunk]) + 14 * ((len(classes) + 2) // 3)
        title = "Incidents by class, % of each team's total"
        if len(names) > _TEAMS_PER_SHARE_CHART:
            title += f" (teams {start + 1}-{min(start + _TEAMS_PER_SHARE_CHART, len(names))})"
        flow += [share_chart(title, names[chunk], part, BODY_WIDTH, height), Spacer(1, 8)]
    flow += [
        bar_chart(
            "All incidents per team",
            [r.pseudonym.removeprefix("Team ") for r in stats.rows],
            [float(r.values.get(TOTAL, 0)) for r in stats.rows],
            BODY_WIDTH,
            130,
            marked=marked[0] if marked else None,
        ),
        p("Incidents per team by class and type", "h1"),
        p(
            "Classes in bold, with the types of each class below them; types no team "
            f"reported are left out. {caption}",
            "note",
        ),
        Spacer(1, 6),
    ]
    lines = _reported_lines(stats)
    for start in range(0, len(stats.rows), _TEAMS_PER_TABLE):
        teams = stats.rows[start : start + _TEAMS_PER_TABLE]
        flow += [_matrix(stats, lines, teams, own), Spacer(1, 10)]
    return flow


def _share(row: TeamRow, key: str) -> float:
    total = row.values.get(TOTAL, Decimal(0))
    return float(row.values.get(key, Decimal(0)) * 100 / total) if total else 0.0


def _reported_lines(stats: TypeStatistics) -> list[Line]:
    """Total, classes, and the types some team reported: the rows of every matrix.

    Found once for the whole report: it looks at every team, so finding it again for
    each matrix of six teams made the report quadratic in the number of teams.
    """
    reported = {key for r in stats.rows for key, value in r.values.items() if value}
    return [line for line in stats.lines if line.depth == 0 or line.key in reported]


def _matrix(
    stats: TypeStatistics, lines: list[Line], rows: tuple[TeamRow, ...], own: TeamRow | None
) -> Flowable:
    """Rows: `lines`; columns: these teams, then the average."""
    body = [
        [line.label, *(number(r.values.get(line.key, 0)) for r in rows), _mean(stats, line.key)]
        for line in lines
    ]
    header = ["Class / type", *(_name(r, own).replace(YOURS, " (you)") for r in rows), "Average"]
    label = 5.2 * cm
    column = (BODY_WIDTH - label) / (len(rows) + 1)
    return table(
        header,
        body,
        [label, *[column] * (len(rows) + 1)],
        bold=[i for i, line in enumerate(lines) if line.depth == 0],
        indented=[i for i, line in enumerate(lines) if line.depth == 1],
        marked_columns=[i + 1 for i, r in enumerate(rows) if own and r.team_id == own.team_id],
    )
