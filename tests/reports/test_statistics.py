"""The monthly figures (reports/statistics.py, reports/summary.py, store/statistics.py):
exact averages over several teams and months where only the newest revision counts,
the publication threshold, pseudonyms, late revisions and message counts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import Engine
from statistics_data import add_team, at, store, type1, type2

from parsers.taxonomy import load_taxonomy
from reports.periods import axis_label, previous_period, report_day, shift, window
from reports.statistics import MonthlyStatistics, compute, pseudonyms, round_half_up
from reports.summary import summarise
from store.db import open_session, transaction
from store.models import Message
from store.registry import list_teams
from store.statistics import message_counts, newest_reports, revisions

PERIOD = "2026-10"
SECRET = b"s" * 32
TAXONOMY = load_taxonomy()


@pytest.fixture
def teams(engine: Engine) -> dict[str, int]:
    """alpha, bravo, charlie report; delta (accredited) and echo (listed) do not."""
    ids = {h: add_team(engine, h) for h in ("alpha", "bravo", "charlie", "delta")}
    ids["echo"] = add_team(engine, "echo", status="listed")
    # October, type 1: bravo corrects its report; only revision 2 counts.
    store(
        engine,
        ids["alpha"],
        type1(PERIOD, 1204, 311, 298, 1650, 1422, 187, "940.5"),
        at("2026-11-02"),
    )
    store(engine, ids["bravo"], type1(PERIOD, 100, 10, 10, 10, 10, 10, 10), at("2026-11-01"))
    store(engine, ids["bravo"], type1(PERIOD, 200, 20, 22, 30, 40, 50, "60.25"), at("2026-11-07"))
    store(engine, ids["charlie"], type1(PERIOD, 1, 2, 3, 4, 5, 6, "7.5"), at("2026-11-03"))
    # October, type 2: two teams only.
    spam = {"abusive-content/spam": 120, "intrusions": 3, "other": 1}
    store(engine, ids["alpha"], type2(PERIOD, spam), at("2026-11-02"))
    mixed = {"abusive-content/spam": 30, "abusive-content": 5, "malicious-code/virus": 12}
    store(engine, ids["bravo"], type2(PERIOD, mixed), at("2026-11-02"))
    # September: two teams; one revision arrives after September's report day.
    store(engine, ids["alpha"], type1("2026-09", 1000), at("2026-10-02"))
    store(engine, ids["bravo"], type1("2026-09", 500), at("2026-10-02"))
    store(engine, ids["bravo"], type1("2026-09", 700), at("2026-10-20"))
    # August: three teams. Outside the window, and after it: ignored.
    for handle, requests in (("alpha", 10), ("bravo", 20), ("charlie", 31)):
        store(engine, ids[handle], type1("2026-08", requests), at("2026-09-01"))
    store(engine, ids["alpha"], type1("2025-10", 99999), at("2025-11-01"))
    store(engine, ids["charlie"], type1("2026-11", 99999), at("2026-11-20"))
    return ids


def statistics(engine: Engine, minimum: int = 3, secret: bytes = SECRET) -> MonthlyStatistics:
    months = window(PERIOD)
    with open_session(engine) as s:
        found = newest_reports(s, months[0], months[-1])
    return compute(found, PERIOD, TAXONOMY, minimum=minimum, secret=secret)


def test_type1_averages_are_exact_over_the_newest_revisions(
    engine: Engine, teams: dict[str, int]
) -> None:
    stats = statistics(engine)
    requests = stats.type1.current("requests")
    assert requests.teams == 3 and requests.published
    assert requests.total == Decimal(1405)  # 1204 + 200 (bravo's revision 2) + 1
    assert requests.mean == Fraction(1405, 3)
    assert requests.rounded() == Decimal("468.33")
    assert stats.type1.current("incidents-opened").mean == 111
    hours = stats.type1.current("hours-spent")
    assert hours.mean == Fraction(Decimal("1008.25")) / 3
    assert hours.rounded() == Decimal("336.08")
    bravo = stats.type1.row_of(teams["bravo"])
    assert bravo is not None and bravo.revision == 2 and bravo.values["requests"] == 200
    assert stats.type1.row_of(teams["delta"]) is None


def test_type2_counts_missing_categories_as_zero_and_sums_classes(
    engine: Engine, teams: dict[str, int]
) -> None:
    stats = statistics(engine, minimum=2)
    current = stats.type2.current
    assert current("total").mean == Fraction(124 + 47, 2)
    assert current("abusive-content").mean == Fraction(120 + 30 + 5, 2)
    assert current("abusive-content/spam").mean == 75
    assert current("abusive-content/-").mean == Fraction(5, 2)
    assert current("malicious-code/virus").mean == 6
    assert current("intrusions").rounded() == Decimal("1.50")
    assert current("fraud").mean == 0 and current("fraud").teams == 2
    assert stats.type2.teams == 2
    keys = [line.key for line in stats.type2.lines]
    assert keys[:3] == ["total", "abusive-content", "abusive-content/-"]
    assert "other/-" not in keys  # "Other" has no types: its class line says it all


def test_threshold_hides_figures_and_trend_months_below_the_minimum(
    engine: Engine, teams: dict[str, int]
) -> None:
    stats = statistics(engine, minimum=3)
    assert not stats.type2.current("total").published  # 2 teams
    assert stats.type2.current("total").mean is not None  # still computed, for internals
    trend = stats.type1.trend["requests"]
    assert [f.period for f in trend] == list(window(PERIOD))
    september, august = trend[-2], trend[-3]
    assert september.teams == 2 and not september.published
    assert september.mean == Fraction(1000 + 700, 2)  # bravo's late revision counts
    assert august.published and august.mean == Fraction(61, 3)
    assert trend[0].teams == 0 and trend[0].mean is None and not trend[0].published
    assert all(f.total < 99999 for f in trend)  # 2025-10 and 2026-11 are outside
    assert statistics(engine, minimum=2).type2.current("total").published


def test_pseudonyms_are_stable_keyed_and_per_report(engine: Engine, teams: dict[str, int]) -> None:
    first, again = statistics(engine), statistics(engine)
    assert [(r.team_id, r.pseudonym) for r in first.type1.rows] == [
        (r.team_id, r.pseudonym) for r in again.type1.rows
    ]
    assert [r.pseudonym for r in first.type1.rows] == ["Team A", "Team B", "Team C"]
    ids = list(range(1, 11))
    base = pseudonyms(ids, SECRET, PERIOD, "type1")
    assert base == pseudonyms(list(reversed(ids)), SECRET, PERIOD, "type1")
    assert sorted(base.values()) == sorted(f"Team {c}" for c in "ABCDEFGHIJ")
    assert base != pseudonyms(ids, b"t" * 32, PERIOD, "type1")
    assert base != pseudonyms(ids, SECRET, "2026-09", "type1")
    assert base != pseudonyms(ids, SECRET, PERIOD, "type2")
    many = pseudonyms(range(30), SECRET, PERIOD, "type1")
    assert {"Team Z", "Team AA", "Team AD"} <= set(many.values())


def test_rounding_is_half_up_and_exact() -> None:
    assert round_half_up(Fraction(1, 8)) == Decimal("0.13")
    assert round_half_up(Fraction(2, 3)) == Decimal("0.67")
    assert round_half_up(Fraction(1005, 1000)) == Decimal("1.01")  # 1.005: no float error
    assert round_half_up(Fraction(-1, 8)) == Decimal("-0.13")
    assert round_half_up(Fraction(7)) == Decimal("7.00")


def test_periods() -> None:
    assert window("2026-02", 3) == ("2025-12", "2026-01", "2026-02")
    assert shift("2026-01", -1) == "2025-12" and shift("2025-12", 13) == "2027-01"
    assert previous_period(at("2026-01-05").date()) == "2025-12"
    assert report_day("2026-12", 5) == at("2027-01-05")
    assert axis_label("2026-01") == "Jan\n2026" and axis_label("2026-03") == "Mar"


def test_summary_lists_missing_teams_and_late_revisions(
    engine: Engine, teams: dict[str, int]
) -> None:
    months = window(PERIOD)
    with open_session(engine) as s:
        found = newest_reports(s, months[0], months[-1])
        history = revisions(s, months[0], months[-1])
        registered = list_teams(s)
    summary = summarise(
        PERIOD, registered, found, history, [], allowed_statuses=["accredited"], day_of_month=5
    )
    lines = {line.handle: line for line in summary.teams}
    assert lines["alpha"].missing == () and not lines["alpha"].submitted["type1"].late
    assert lines["bravo"].submitted["type1"].revision == 2
    assert lines["bravo"].submitted["type1"].late  # stored 7 Nov, report day 5 Nov
    assert lines["charlie"].missing == ("type2",)
    assert lines["delta"].missing == ("type1", "type2")
    assert lines["echo"].missing == () and not lines["echo"].expected  # listed: not expected
    assert [line.handle for line in summary.missing] == ["charlie", "delta"]
    late = {(r.team, r.period, r.revision) for r in summary.late}
    assert late == {("bravo", "2026-10", 2), ("bravo", "2026-09", 2)}
    assert summary.submitted("type1") == 3 and summary.submitted("type2") == 2


def _message(
    state: str, reason: str | None, received: datetime, team: int | None = None
) -> Message:
    return Message(
        channel="smtp",
        raw=b"x",
        raw_sha256="0" * 64,
        size=1,
        state=state,
        reason=reason,
        team_id=team,
        received_at=received,
    )


def test_message_counts_by_state_and_reason_for_the_month(
    engine: Engine, teams: dict[str, int]
) -> None:
    with transaction(engine) as s:
        s.add(_message("quarantined", "bad-signature", at("2026-10-01")))
        s.add(_message("quarantined", "bad-signature", at("2026-10-31 23:59")))
        s.add(_message("quarantined", "unknown-key", at("2026-10-15")))
        s.add(_message("rejected", "invalid-report", at("2026-10-15"), teams["charlie"]))
        s.add(_message("accepted", None, at("2026-10-15"), teams["alpha"]))
        s.add(_message("quarantined", "bad-signature", at("2026-11-01")))  # next month
    with open_session(engine) as s:
        counts = message_counts(s, at("2026-10-01"), at("2026-11-01"))
    summary = summarise(PERIOD, [], [], [], counts, allowed_statuses=[], day_of_month=5)
    assert summary.quarantined == (("bad-signature", 2), ("unknown-key", 1))
    assert summary.rejected == (("invalid-report", "charlie", 1),)
    assert dict(summary.states) == {"accepted": 1, "quarantined": 3, "rejected": 1}
