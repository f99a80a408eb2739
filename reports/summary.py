"""The coordinators' summary: who submitted which type, who did not, what came late,
and how many messages were quarantined or rejected, and why.

In: the registered teams, the newest reports of the report month, every revision of the
12-month window, message counts for the month. Out: a `CoordinatorSummary`. Pure.

Rules:
- A team is *expected* to submit when its status is one the policy allows to submit;
  an expected team without a report of a type for the month is listed as missing it.
- A revision is *late* when it was stored on or after the report day of its month (day
  `day_of_month` of the following month, 00:00 UTC): the statistics mailed on that day
  did not include it. Late revisions of the whole 12-month window are listed, since they
  change the trend shown in this month's reports.
- Message counts are for messages *received* in the calendar month (UTC).
- Refusals that were replays (content the team had sent before, content signed long
  before it arrived, a stale signature) are listed apart, by team, and not counted among
  the team's own rejections: anyone can resend a team's signed text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from contract.codes import State
from reports.periods import report_day, round_name
from reports.statistics import TYPES
from store.models import Team
from store.notices import Replayed
from store.statistics import MessageCount, RevisionRow, StoredReport


@dataclass(frozen=True)
class Submitted:
    revision: int
    created_at: datetime
    late: bool


@dataclass(frozen=True)
class TeamLine:
    handle: str
    name: str
    status: str
    expected: bool  # its status may submit
    submitted: dict[str, Submitted]  # type -> the revision that counts

    @property
    def missing(self) -> tuple[str, ...]:
        if not self.expected:
            return ()
        return tuple(t for t in TYPES if t not in self.submitted)


@dataclass(frozen=True)
class CoordinatorSummary:
    period: str
    teams: tuple[TeamLine, ...]
    late: tuple[RevisionRow, ...]
    states: tuple[tuple[str, int], ...]  # state -> messages received in the round
    quarantined: tuple[tuple[str, int], ...]  # reason -> count
    rejected: tuple[tuple[str, str, int], ...]  # (reason, team, count), replays apart
    replayed: tuple[Replayed, ...] = ()  # refusals not counted against the team
    round: str = ""  # the days of the submission round the messages are counted over

    def submitted(self, report_type: str) -> int:
        return sum(1 for line in self.teams if report_type in line.submitted)

    @property
    def missing(self) -> tuple[TeamLine, ...]:
        return tuple(line for line in self.teams if line.missing)


def summarise(
    period: str,
    teams: Sequence[Team],
    reports: Iterable[StoredReport],
    revisions: Iterable[RevisionRow],
    counts: Iterable[MessageCount],
    *,
    allowed_statuses: Sequence[str],
    day_of_month: int,
    replayed: Iterable[Replayed] = (),
) -> CoordinatorSummary:
    def late(row_period: str, created_at: datetime) -> bool:
        return _aware(created_at) >= report_day(row_period, day_of_month)

    submitted: dict[int, dict[str, Submitted]] = {}
    for report in reports:
        if report.period == period:
            submitted.setdefault(report.team_id, {})[report.type] = Submitted(
                report.revision, report.created_at, late(report.period, report.created_at)
            )
    lines = tuple(
        TeamLine(
            team.handle,
            team.name,
            team.status,
            team.status in allowed_statuses,
            submitted.get(team.id or 0, {}),
        )
        for team in sorted(teams, key=lambda t: t.handle)
    )
    late_rows = tuple(r for r in revisions if late(r.period, r.created_at))
    replays = tuple(replayed)
    states, quarantined, rejected = _message_tables(counts)
    return CoordinatorSummary(
        period,
        lines,
        late_rows,
        states,
        quarantined,
        _own(rejected, replays),
        replays,
        round_name(period, day_of_month),
    )


def _own(
    rejected: tuple[tuple[str, str, int], ...], replays: tuple[Replayed, ...]
) -> tuple[tuple[str, str, int], ...]:
    """The rejections by reason and team, less those that were replays."""
    apart = {(r.reason or "unknown", r.team): r.count for r in replays if r.state == "rejected"}
    left = [(reason, team, n - apart.get((reason, team), 0)) for reason, team, n in rejected]
    return tuple(sorted((row for row in left if row[2] > 0), key=lambda r: (-r[2], r[:2])))


def _message_tables(
    counts: Iterable[MessageCount],
) -> tuple[
    tuple[tuple[str, int], ...], tuple[tuple[str, int], ...], tuple[tuple[str, str, int], ...]
]:
    states: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    for row in counts:
        states[row.state] += row.count
        if row.state == State.QUARANTINED:
            quarantined[row.reason or "unknown"] += row.count
        elif row.state == State.REJECTED:
            rejected[(row.reason or "unknown", row.team or "-")] += row.count
    return (
        tuple(sorted(states.items())),
        tuple(sorted(quarantined.items(), key=lambda item: (-item[1], item[0]))),
        tuple(
            (reason, team, n)
            for (reason, team), n in sorted(rejected.items(), key=lambda i: (-i[1], i[0]))
        ),
    )


def _aware(moment: datetime) -> datetime:
    # The store hands back aware UTC; a naive value (an older SQLite row) is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
