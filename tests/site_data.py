"""Several months of reports from five teams, for the public site's tests: the site's
trends need a history, and its privacy checks need team names, handles and individual
values that must never appear in it.

`HISTORY` lists (team handle, report) in the order they are stored; `stored_reports()`
turns it into the rows `reports.statistics.compute` takes, for the pure tests, and
`store_history()` stores it in a real database, for the publisher's and browser tests.
In June 2026 only two teams sent type 1 and in April one sent type 2: below the
threshold of 3, so those months must read "not published".
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine
from statistics_data import add_team, store, type1, type2

from parsers.model import Type1Report, Type2Report
from store.db import transaction
from store.models import Team
from store.statistics import StoredReport

MONTHS = tuple(f"2026-{m:02d}" for m in range(3, 11))  # March to October 2026
LAST = MONTHS[-1]
THIN_TYPE1 = "2026-06"  # two teams: type 1 not published
THIN_TYPE2 = "2026-04"  # one team: type 2 not published
# Handle -> name: names in several scripts, and markup that must come out as text.
TEAMS = {
    "cesnet": "CESNET-CERTS Česko",
    "grnet": "Ελληνική ομάδα",
    "bgcert": "Български екип",
    "nordsud": "CERT Nord & Süd <lab>",
    "zulu": "Zulu Incident Response",
}
# Individual values that no average of the history equals: if one of them shows up in
# the site, an individual report leaked.
SECRET_VALUES = (7919, 104729)


def _type1_values(index: int, month: int) -> tuple[int | str, ...]:
    base = 100 * (index + 1) + 7 * month
    if index == 0 and month == 6:
        return (SECRET_VALUES[0], 11, 10, 12, 13, 14, "15.5")
    return (base, base // 3, base // 4, base + 5, base + 6, 10 + index, f"{base / 2 + 0.25}")


def _type2_counts(index: int, month: int) -> dict[str, int]:
    if index == 0 and month == 4:
        return {"malicious-code/virus": SECRET_VALUES[1]}
    return {
        "abusive-content/spam": 40 * (index + 1) + month,
        "malicious-code/virus": 5 * index + month,
        "intrusions": index + 1,
        "information-gathering/scanning": 3 * month,
    }


def _history() -> list[tuple[str, Type1Report | Type2Report]]:
    found: list[tuple[str, Type1Report | Type2Report]] = []
    handles = list(TEAMS)
    for period in MONTHS:
        month = int(period[5:])
        type1_teams = handles[:2] if period == THIN_TYPE1 else handles[:4]
        type2_teams = handles[:1] if period == THIN_TYPE2 else handles[1:4] + ["zulu"]
        for handle in type1_teams:
            found.append((handle, type1(period, *_type1_values(handles.index(handle), month))))
        for handle in type2_teams:
            counts = _type2_counts(handles.index(handle), month)
            found.append((handle, type2(period, counts)))
    return found


HISTORY = _history()
STORED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def stored_reports() -> list[StoredReport]:
    """The history as the store would hand it to `compute` (team ids 1.. in TEAMS order)."""
    ids = {handle: i for i, handle in enumerate(TEAMS, start=1)}
    rows = []
    for number, (handle, report) in enumerate(HISTORY, start=1):
        values: dict[str, Decimal] = report.values if isinstance(report, Type1Report) else {}
        counts = report.counts if isinstance(report, Type2Report) else {}
        rows.append(
            StoredReport(
                number,
                ids[handle],
                handle,
                report.type,
                report.period,
                1,
                STORED,
                type1=dict(values),
                type2=dict(counts),
            )
        )
    return rows


def store_history(engine: Engine) -> dict[str, int]:
    """Register the five teams (with their names) and store every report; handle -> id."""
    ids = {handle: add_team(engine, handle) for handle in TEAMS}
    with transaction(engine) as s:  # add_team names them "CERT <Handle>": rename
        for handle, team_id in ids.items():
            team = s.get(Team, team_id)
            assert team is not None
            team.name = TEAMS[handle]
    for handle, report in HISTORY:
        store(engine, ids[handle], report, STORED)
    return ids
