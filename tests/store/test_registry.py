"""Registry queries: teams, keys, coordinators."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from parsers.model import Type1Report, Type2Report
from store import registry, submissions
from store.db import open_session, transaction
from store.models import TeamKey

FPR_A = "0123456789ABCDEF0123456789ABCDEF01234567"
FPR_B = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"


def test_teams(engine: Engine, new_team_id: Callable[[str], int]) -> None:
    b_id, a_id = new_team_id("cert-b"), new_team_id("cert-a")
    with transaction(engine) as session:
        team = registry.get_team(session, "cert-a")
        assert team is not None and team.id == a_id
        assert team.email == "stats@cert-a.example" and team.country == "NL"
        assert team.created_at.tzinfo is not None
        assert registry.get_team(session, "nobody") is None
        by_id = registry.get_team_by_id(session, b_id)
        assert by_id is not None and by_id.handle == "cert-b"
        assert registry.get_team_by_id(session, 999_999) is None
        assert [t.handle for t in registry.list_teams(session)] == ["cert-a", "cert-b"]
        assert registry.team_handles(session) == {a_id: "cert-a", b_id: "cert-b"}
        changed = registry.set_team_status(session, "cert-b", "suspended")
        assert changed is not None and changed.status == "suspended"
        assert registry.set_team_status(session, "nobody", "suspended") is None
    with open_session(engine) as session:
        team = registry.get_team(session, "cert-b")
        assert team is not None and team.status == "suspended"
        with pytest.raises(IntegrityError):
            registry.add_team(
                session,
                handle="cert-a",
                name="Again",
                email="x@y",
                status="listed",
                country=None,
            )


def test_keys(engine: Engine, new_team_id: Callable[[str], int]) -> None:
    team_a, team_b = new_team_id("cert-a"), new_team_id("cert-b")
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with transaction(engine) as session:
        registry.add_key(
            session,
            TeamKey(
                fingerprint=FPR_A.lower(),
                team_id=team_a,
                user_ids="CERT A <stats@cert-a.example>",
                created_at=created,
            ),
        )
        registry.add_key(session, TeamKey(fingerprint=FPR_B, team_id=team_b))
    with open_session(engine) as session:
        key = registry.get_key(session, " ".join(FPR_A[i : i + 4] for i in range(0, 40, 4)))
        assert key is not None and key.fingerprint == FPR_A
        assert key.created_at == created and key.revoked_at is None
        assert registry.get_key(session, "F" * 40) is None
        assert [k.fingerprint for k in registry.list_keys(session)] == [FPR_A, FPR_B]
        assert [k.fingerprint for k in registry.keys_of_team(session, team_b)] == [FPR_B]
        assert registry.list_keys(session, team_a)[0].fingerprint == FPR_A
        found = registry.team_for_fingerprint(session, FPR_B.lower())
        assert found is not None
        assert (found.handle, found.fingerprint) == ("cert-b", FPR_B)
        assert registry.team_for_fingerprint(session, "F" * 40) is None
    with open_session(engine) as session, pytest.raises(IntegrityError):
        registry.add_key(session, TeamKey(fingerprint=FPR_A, team_id=team_b))


def test_revoke_key(engine: Engine, new_team_id: Callable[[str], int]) -> None:
    team_id = new_team_id("cert-a")
    when = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with transaction(engine) as session:
        registry.add_key(session, TeamKey(fingerprint=FPR_A, team_id=team_id))
    with transaction(engine) as session:
        key = registry.revoke_key(session, FPR_A, "compromised", when)
        assert key is not None
        assert registry.revoke_key(session, "F" * 40, None, when) is None
    with open_session(engine) as session:
        key = registry.get_key(session, FPR_A)
    assert key is not None
    assert key.revoked_at == when
    assert key.revoked_at is not None and key.revoked_at.utcoffset() == timedelta(0)
    assert key.revoke_reason == "compromised"


def test_coordinators(engine: Engine) -> None:
    with transaction(engine) as session:
        registry.add_coordinator(
            session, email="zoe@ch.example", fingerprint=FPR_A.lower(), name="Zoe"
        )
        registry.add_coordinator(session, email="al@ch.example", fingerprint=FPR_B)
    with transaction(engine) as session:
        zoe = registry.get_coordinator(session, "zoe@ch.example")
        assert zoe is not None and (zoe.name, zoe.fingerprint) == ("Zoe", FPR_A)
        assert registry.get_coordinator(session, "nobody@ch.example") is None
        emails = [c.email for c in registry.list_coordinators(session)]
        assert emails == ["al@ch.example", "zoe@ch.example"]
        assert registry.remove_coordinator(session, "zoe@ch.example")
        assert not registry.remove_coordinator(session, "zoe@ch.example")
    with open_session(engine) as session:
        assert [c.email for c in registry.list_coordinators(session)] == ["al@ch.example"]


def test_last_submission_at(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
    reports: tuple[Callable[..., Type1Report], Callable[..., Type2Report]],
) -> None:
    type1, type2 = reports
    team_a, team_b = new_team_id("cert-a"), new_team_id("cert-b")
    message_id = new_message_id()
    with transaction(engine) as session:
        assert registry.last_submission_at(session, team_a) is None
        submissions.store_report(session, team_a, type1(), message_id)
        last = submissions.store_report(session, team_a, type2(), message_id)
    with open_session(engine) as session:
        assert registry.last_submission_at(session, team_a) == last.created_at
        assert registry.last_submission_at(session, team_b) is None
