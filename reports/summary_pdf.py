"""The coordinators' summary PDF: who submitted which type, who did not, which
revisions came late, and the month's quarantine and rejection counts by reason, with
replayed refusals apart from each team's own rejections.

In: a `CoordinatorSummary` and the clearinghouse name. Out: PDF bytes. Unlike the
internal reports this one names teams: it goes to coordinators only.
"""

from __future__ import annotations

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer

from contract.reasons import explain
from reports.layout import BODY_WIDTH, chunked, markup, name, p, table
from reports.pdf import DocumentMeta, render
from reports.periods import month_name
from reports.statistics import TYPES
from reports.summary import CoordinatorSummary, Submitted, TeamLine

CLASSIFICATION = "CONFIDENTIAL: coordinators only"
_MISSING = '<font color="#A23B3B"><b>missing</b></font>'


def summary_pdf(summary: CoordinatorSummary, clearinghouse: str) -> bytes:
    expected = sum(1 for line in summary.teams if line.expected)
    received = sum(n for _, n in summary.states)
    meta = DocumentMeta(
        clearinghouse=clearinghouse,
        title="Coordinator summary",
        period=summary.period,
        classification=CLASSIFICATION,
        facts=[
            ("Period", f"{month_name(summary.period)} ({summary.period})"),
            ("Registered teams", f"{len(summary.teams)}, of which {expected} may submit"),
            *(
                (f"Type {t[-1]} submitted", f"{summary.submitted(t)} of {expected} expected")
                for t in TYPES
            ),
            ("Late revisions", str(len(summary.late))),
            ("Messages received", f"{received} in the submission round, {summary.round}"),
        ],
        introduction=(
            "Teams are expected to submit when their status allows submission. A revision "
            "is late when it was stored on or after the report day of its month: the "
            "statistics mailed on that day did not include it. Messages are counted over "
            "the month's submission round: from the previous report day up to this one, "
            "when the month's reports (and the problems teams had sending them) arrive.\n\n"
            "The public and internal statistics for the month are attached to the same "
            "mail. This summary names teams: do not pass it on."
        ),
    )
    body = [
        *_submissions(summary),
        Spacer(1, 8),
        *_late(summary),
        Spacer(1, 8),
        *_messages(summary),
    ]
    return render(meta, body)


def _cell(line: TeamLine, report_type: str) -> str | Paragraph:
    found: Submitted | None = line.submitted.get(report_type)
    if found is None:
        return markup(_MISSING, "cell") if line.expected else "–"
    text = f"rev. {found.revision}, {found.created_at:%Y-%m-%d}"
    return markup(f"{text} <b>late</b>", "cell") if found.late else text


def _submissions(summary: CoordinatorSummary) -> list[Flowable]:
    rows = [
        [line.handle, p(name(line.name), "cell"), line.status, *(_cell(line, t) for t in TYPES)]
        for line in summary.teams
    ]
    widths = [3 * cm, BODY_WIDTH - 3 * cm - 2.4 * cm - 2 * 3.6 * cm, 2.4 * cm, 3.6 * cm, 3.6 * cm]
    flow: list[Flowable] = [p(f"Submissions for {month_name(summary.period)}", "h1")]
    if rows:
        flow += chunked(
            ["Team", "Name", "Status", "Type 1", "Type 2"], rows, widths, numeric_from=5
        )
    else:
        flow.append(p("No team is registered."))
    flow.append(p("Not submitted", "h2"))
    if not summary.missing:
        flow.append(p("Every team that may submit sent both types for the month."))
    for line in summary.missing:
        types = " and ".join(f"type {t[-1]}" for t in line.missing)
        flow.append(p(f"{line.handle} ({name(line.name)}): {types} missing"))
    return flow


def _late(summary: CoordinatorSummary) -> list[Flowable]:
    flow: list[Flowable] = [p("Late revisions", "h1")]
    if not summary.late:
        return [
            *flow,
            p("None: every revision in the 12-month window arrived before its report day."),
        ]
    rows = [
        [r.team, f"type {r.type[-1]}", r.period, str(r.revision), f"{r.created_at:%Y-%m-%d %H:%M}"]
        for r in summary.late
    ]
    widths = [4 * cm, 2.5 * cm, 2.5 * cm, 2.5 * cm, BODY_WIDTH - 11.5 * cm]
    header = ["Team", "Type", "Period", "Revision", "Stored (UTC)"]
    return [*flow, *chunked(header, rows, widths, numeric_from=3)]


def _messages(summary: CoordinatorSummary) -> list[Flowable]:
    flow: list[Flowable] = [p(f"Messages received in the round, {summary.round}", "h1")]
    if not summary.states:
        return [*flow, p("No messages were received.")]
    states = [[state, str(n)] for state, n in summary.states]
    flow.append(table(["State", "Messages"], states, [5 * cm, 3 * cm]))
    quarantined = [
        [reason, p(explain(reason)[0], "cell"), str(n)] for reason, n in summary.quarantined
    ]
    rejected = [[reason, team, str(n)] for reason, team, n in summary.rejected]
    flow.append(
        KeepTogether(
            [
                p("Quarantined, by reason", "h2"),
                table(
                    ["Reason", "Meaning", "Messages"],
                    quarantined,
                    [4 * cm, BODY_WIDTH - 6.5 * cm, 2.5 * cm],
                    numeric_from=2,
                )
                if quarantined
                else p("None."),
            ]
        )
    )
    flow.append(
        KeepTogether(
            [
                p("Rejected, by reason and team", "h2"),
                table(
                    ["Reason", "Team", "Messages"],
                    rejected,
                    [4 * cm, 4 * cm, 2.5 * cm],
                    numeric_from=2,
                )
                if rejected
                else p("None."),
            ]
        )
    )
    flow.append(KeepTogether(_replayed(summary)))
    return flow


def _replayed(summary: CoordinatorSummary) -> list[Flowable]:
    flow: list[Flowable] = [
        p("Replays: not counted against the team", "h2"),
        p(
            "Refusals of content the team had sent before, of content signed long before "
            "it arrived, and of stale signatures. Anyone who has a copy of a team's "
            "signed text can send it again: these are not the team's own rejections."
        ),
    ]
    if not summary.replayed:
        return [*flow, p("None.")]
    rows = [[r.team, r.state, r.reason or "-", str(r.count)] for r in summary.replayed]
    widths = [4 * cm, 3 * cm, 4 * cm, 2.5 * cm]
    return [*flow, table(["Team", "State", "Reason", "Messages"], rows, widths, numeric_from=3)]
