"""Concurrency inside one instance: worker threads share the spool, the outbox and the
teams, on SQLite and PostgreSQL alike.

Races are forced, not hoped for: a barrier holds each thread at the point where the
race would happen until the other one is there too. Outcomes normally commit in arrival
order (`leases.wait_for_older`); the team lock is what still keeps one team's messages
apart when that wait gives up (an older message's worker is stuck), which these tests
make happen at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from support import TYPE1, TeamClient

from gateway import pipeline, worker
from gateway.app import App
from gateway.delivery import MaildirTransport
from gateway.pipeline import Outcome
from gateway.spool import accept
from gateway.worker import Worker
from store import leases
from store.db import open_session
from store.monitoring import list_outbox
from store.spool import Spooled, list_messages
from store.submission_rows import list_submissions


def report(index: int) -> str:
    return TYPE1.replace("Requests: 1204", f"Requests: {index}")


def held_together(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, parties: int) -> None:
    """Make the first `parties` calls of `module.name` wait for each other, then go on."""
    original: Callable[..., Any] = getattr(module, name)
    barrier = threading.Barrier(parties, timeout=60)
    calls = iter(range(parties))

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if next(calls, None) is not None:
            barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def ordering_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both messages authenticated, neither stored; then the arrival-order wait times out."""
    barrier = threading.Barrier(2, timeout=60)

    real_check = leases.binding_and_older_in_flight

    def each_sees_the_other_in_flight(
        session: Any, fingerprint: str, message_id: int, domain: str | None = None
    ) -> tuple[Any, bool]:
        found, _ = real_check(session, fingerprint, message_id, domain)
        return found, True  # so each waits for the other, whichever is older

    def gave_up(
        engine: object, message_id: int, *, timeout: float, domain: str | None = None
    ) -> bool:
        barrier.wait()
        return False

    monkeypatch.setattr(leases, "binding_and_older_in_flight", each_sees_the_other_in_flight)
    monkeypatch.setattr(leases, "wait_for_older", gave_up)


def concurrent_worker(app: App, threads: int = 2) -> Worker:
    return Worker(app, MaildirTransport(app.config.outbound.maildir), threads=threads)


def states(app: App) -> list[str]:
    with open_session(app.engine) as s:
        return [m.state for m in list_messages(s)]


def test_threads_process_messages_side_by_side_each_once(
    app: App, team: TeamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [accept(app.engine, team.submit(report(i)), "smtp")[0] for i in range(6)]
    owners: list[str] = []

    def recording(
        app: App, message_id: int, owner: str | None = None, claimed: Spooled | None = None
    ) -> Outcome:
        owners.append(owner or "")
        return pipeline.process_message(app, message_id, owner, claimed)

    monkeypatch.setattr(worker, "process_message", recording)
    # Both threads must be inside the pipeline at once, or this waits until it fails.
    held_together(monkeypatch, worker, "process_message", 2)

    counts = concurrent_worker(app).run_once()

    assert counts == {"accepted": 6}
    assert states(app) == ["accepted"] * len(ids)
    assert len(set(owners)) == 2  # each thread under a lease owner of its own
    with open_session(app.engine) as s:
        assert sorted(r.revision for r in list_submissions(s)) == [1, 2, 3, 4, 5, 6]
        assert len(list_outbox(s)) == 6


def test_the_same_message_twice_at_once_is_accepted_once(
    app: App, team: TeamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = team.submit()
    first, second = (accept(app.engine, raw, "smtp")[0] for _ in range(2))
    ordering_gives_up(monkeypatch)  # the moment a duplicate check could race

    assert concurrent_worker(app).run_once() == {"accepted": 1, "duplicate": 1}

    with open_session(app.engine) as s:
        assert len(list_submissions(s)) == 1
        kinds = sorted(e.kind for e in list_outbox(s))
        accepted = [m.id for m in list_messages(s) if m.state == "accepted"]
    assert kinds == ["duplicate", "receipt"] and accepted in ([first], [second])


def test_two_reports_for_one_period_at_once_become_revisions_one_and_two(
    app: App, team: TeamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(2):
        accept(app.engine, team.submit(report(index)), "smtp")
    ordering_gives_up(monkeypatch)

    assert concurrent_worker(app).run_once() == {"accepted": 2}

    with open_session(app.engine) as s:
        revisions = sorted((r.revision, r.supersedes_id is None) for r in list_submissions(s))
    assert revisions == [(1, True), (2, False)]


def test_run_once_with_a_limit_stops_there_and_leaves_the_rest(app: App, team: TeamClient) -> None:
    for index in range(5):
        accept(app.engine, team.submit(report(index)), "smtp")

    assert concurrent_worker(app).run_once(limit=3) == {"accepted": 3}

    assert sorted(states(app)) == ["accepted"] * 3 + ["received"] * 2
    with open_session(app.engine) as s:
        unleased = [m for m in list_messages(s) if m.state == "received" and m.lease_owner]
    assert unleased == []  # what a thread claimed past the limit, it gave back


def test_threads_deliver_each_receipt_once(app: App, team: TeamClient) -> None:
    for index in range(4):
        accept(app.engine, team.submit(report(index)), "smtp")
    concurrent_worker(app, threads=3).run_once()
    senders = [concurrent_worker(app) for _ in range(2)]

    results = [0, 0]  # each entry counted by the one sender that recorded it

    def flush(index: int) -> None:
        results[index] = senders[index].flush().sent

    threads = [threading.Thread(target=flush, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(results) == 4
    files = list((app.config.outbound.maildir / "new").iterdir())
    with open_session(app.engine) as s:
        entries = list_outbox(s)
    assert len(files) == 4 and {e.state for e in entries} == {"sent"}
