"""Stored reports: revisions, exact values, listings."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from parsers.model import TYPE1_FIELDS, Type1Report, Type2Report
from store import registry, submission_rows, submissions
from store.db import open_session, transaction
from store.models import TeamKey

Reports = tuple[Callable[..., Type1Report], Callable[..., Type2Report]]


def test_revisions_count_up_and_supersede(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
) -> None:
    type1, _ = reports
    team_id = new_team_id("cert-a")
    stored = []
    for hours in ("1.5", "2.5", "3.5"):
        message_id = new_message_id()
        with transaction(engine) as session:
            report = type1(hours_spent=Decimal(hours))
            stored.append(submissions.store_report(session, team_id, report, message_id))
    assert [s.revision for s in stored] == [1, 2, 3]
    assert [s.supersedes_id for s in stored] == [None, stored[0].id, stored[1].id]
    assert all(s.id is not None for s in stored)
    with open_session(engine) as session:
        latest = submissions.latest_submission(session, team_id, "type1", "2026-10")
        assert latest is not None and latest.id == stored[2].id
        values = submission_rows.submission_values(session, latest)
        assert values["hours-spent"] == Decimal("3.5")
        assert submissions.latest_submission(session, team_id, "type2", "2026-10") is None
        assert submissions.latest_submission(session, team_id, "type1", "2026-09") is None


def test_lock_team_reads_the_team_and_its_keys_in_binding_order(
    engine: Engine, new_team_id: Callable[[str], int]
) -> None:
    keyless, keyed = new_team_id("cert-none"), new_team_id("cert-keys")
    bound = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(engine) as session:
        for fingerprint, day, revoked in (("BB", 2, None), ("AA", 1, bound), ("CC", 2, None)):
            key = TeamKey(
                fingerprint=fingerprint,
                team_id=keyed,
                created_at=bound,
                revoked_at=revoked,
                bound_at=bound + timedelta(days=day),
            )
            registry.add_key(session, key)
    with transaction(engine) as session:
        none = submissions.lock_team(session, keyless)
        some = submissions.lock_team(session, keyed)
        assert submissions.lock_team(session, 10_000) is None
    assert none is not None and (none.row.handle, none.keys) == ("cert-none", [])
    assert some is not None and some.row.handle == "cert-keys"
    assert [(k.fingerprint, k.revoked_at is not None) for k in some.keys] == [
        ("AA", True),
        ("BB", False),
        ("CC", False),
    ]
    with open_session(engine) as session:  # what a reply outside the lock reads
        assert some.keys == registry.key_dates_of_team(session, keyed)


def test_revisions_are_per_team_type_and_period(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
) -> None:
    type1, type2 = reports
    team_a, team_b = new_team_id("cert-a"), new_team_id("cert-b")
    message_id = new_message_id()
    with transaction(engine) as session:
        first = [
            submissions.store_report(session, team_a, type1(), message_id),
            submissions.store_report(session, team_a, type2(), message_id),
            submissions.store_report(session, team_a, type1("2026-09"), message_id),
            submissions.store_report(session, team_b, type1(), message_id),
        ]
        again = submissions.store_report(session, team_a, type1(), message_id)
    assert [s.revision for s in first] == [1, 1, 1, 1]
    assert (again.revision, again.supersedes_id) == (2, first[0].id)
    with open_session(engine) as session:
        found = submission_rows.submissions_for_message(session, message_id)
    assert [s.id for s in found] == [s.id for s in [*first, again]]


def test_type1_values_round_trip_exactly(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
) -> None:
    type1, _ = reports
    team_id = new_team_id("cert-a")
    report = type1(requests=Decimal(0), hours_spent=Decimal("999999999999.99"))
    message_id = new_message_id()
    with transaction(engine) as session:
        submission = submissions.store_report(session, team_id, report, message_id)
    with open_session(engine) as session:
        values = submission_rows.submission_values(session, submission)
    assert values == report.values
    assert list(values) == list(TYPE1_FIELDS)
    assert {k: str(v) for k, v in values.items()} == {k: str(v) for k, v in report.values.items()}
    assert all(isinstance(v, Decimal) for v in values.values())


@pytest.mark.parametrize(
    ("hours", "shown"),
    [("940.5", "940.5"), ("940.50", "940.5"), ("0.05", "0.05"), ("10.00", "10")],
)
def test_hours_keep_their_value(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
    hours: str,
    shown: str,
) -> None:
    type1, _ = reports
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    with transaction(engine) as session:
        report = type1(hours_spent=Decimal(hours))
        submission = submissions.store_report(session, team_id, report, message_id)
    with open_session(engine) as session:
        stored = submission_rows.submission_values(session, submission)["hours-spent"]
    assert stored == Decimal(hours)
    assert str(stored) == shown


@pytest.mark.parametrize("bad", ["940.555", "1000000000000", "NaN", "Infinity"])
def test_values_that_the_column_would_change_are_refused(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
    bad: str,
) -> None:
    type1, _ = reports
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    with open_session(engine) as session:
        with pytest.raises(ValueError, match="NUMERIC"):
            report = type1(hours_spent=Decimal(bad))
            submissions.store_report(session, team_id, report, message_id)
        assert submissions.latest_submission(session, team_id, "type1", "2026-10") is None


# Type 1 values as a parser may hand them over: any order, any subset of the fields,
# trailing zeros, exponents, up to two decimals and twelve digits before the point.
_cents = st.integers(min_value=-(10**14) + 1, max_value=10**14 - 1)
_type1_value = st.builds(
    lambda cents, zeros, exponent: (
        Decimal(cents).scaleb(-2) + Decimal(f"0.{'0' * zeros}")
        if not exponent
        else Decimal(cents).scaleb(-2).normalize()
    ),
    _cents,
    st.integers(min_value=0, max_value=2),
    st.booleans(),
)
_type1_values = st.lists(
    st.tuples(st.sampled_from(TYPE1_FIELDS), _type1_value), unique_by=lambda item: item[0]
).map(dict)
_slug = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
_type2_counts = st.dictionaries(
    st.tuples(_slug, st.none() | _slug), st.integers(min_value=0, max_value=2**31 - 1)
)
_serial = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=_type1_values, counts=_type2_counts)
def test_stored_values_are_what_is_read_back(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    values: dict[str, Decimal],
    counts: dict[tuple[str, str | None], int],
) -> None:
    """Receipts show `stored_values` instead of reading the rows back: the same."""
    n = next(_serial)
    team_id = new_team_id(f"cert-{n}")
    message_id = new_message_id(f"Subject: {n}\r\n\r\nbody\r\n".encode())
    sent: list[Type1Report | Type2Report] = [
        Type1Report("2026-10", values),
        Type2Report("2026-10", counts),
    ]
    with transaction(engine) as session:
        stored = [submissions.store_report(session, team_id, r, message_id) for r in sent]
    with open_session(engine) as session:
        read = [submission_rows.submission_values(session, submission) for submission in stored]
    shown = [submission_rows.stored_values(report) for report in sent]
    assert [list(v.items()) for v in shown] == [list(v.items()) for v in read]
    assert [[str(n) for n in v.values()] for v in shown] == [
        [str(n) for n in v.values()] for v in read
    ]


def test_type2_counts_round_trip_in_order(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
) -> None:
    _, type2 = reports
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    with transaction(engine) as session:
        submission = submissions.store_report(session, team_id, type2(), message_id)
    with open_session(engine) as session:
        values = submission_rows.submission_values(session, submission)
    assert list(values.items()) == [
        ("abusive-content/spam", 120),
        ("intrusion-attempts/login-attempts", 43),
        ("intrusions", 3),
        ("other", 1),
    ]


def test_list_submissions_filters_and_carries_values(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: Reports,
) -> None:
    type1, type2 = reports
    team_a, team_b = new_team_id("cert-a"), new_team_id("cert-b")
    message_id = new_message_id()
    with transaction(engine) as session:
        a1 = submissions.store_report(session, team_a, type1(), message_id)
        a2 = submissions.store_report(session, team_a, type2(), message_id)
        b1 = submissions.store_report(session, team_b, type1("2026-09"), message_id)
        a3 = submissions.store_report(session, team_a, type1(), message_id)
    with open_session(engine) as session:
        every = submission_rows.list_submissions(session)
        assert [row.id for row in every] == [a1.id, a2.id, b1.id, a3.id]

        def ids(
            team: str | None = None, period: str | None = None, type: str | None = None
        ) -> list[int]:
            found = submission_rows.list_submissions(session, team=team, period=period, type=type)
            return [row.id for row in found]

        assert ids(team="cert-a") == [a1.id, a2.id, a3.id]
        assert ids(team="cert-b") == [b1.id]
        assert ids(team="nobody") == []
        assert ids(period="2026-09") == [b1.id]
        assert ids(type="type2") == [a2.id]
        assert ids(team="cert-a", type="type1", period="2026-10") == [a1.id, a3.id]
    row = every[3]
    assert (row.team, row.type, row.period, row.revision) == (
        "cert-a",
        "type1",
        "2026-10",
        2,
    )
    assert (row.message_id, row.supersedes_id) == (message_id, a1.id)
    assert row.created_at.tzinfo is not None
    assert row.values == type1().values
    assert every[1].values == {
        "abusive-content/spam": 120,
        "intrusion-attempts/login-attempts": 43,
        "intrusions": 3,
        "other": 1,
    }
