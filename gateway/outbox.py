"""Deliver the outbox: claim due entries, hand them to the transport, record the result.

Only sealed entries (`pending`) are ever claimed, so this step never sees plaintext:
a reply's draft (`unsealed`) waits until the worker, or `Worker.flush`, seals it. Delivery
is at-least-once: a crash between the transport's success and `mark_sent` delivers the
entry again (the maildir transport makes that idempotent by file name). Several senders
(threads, gateway instances) share the outbox: each entry is leased to one of them, and
only the lease holder's outcome is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from contract.errors import DeliveryError, LeaseLostError
from gateway.delivery import Transport
from store import outbox
from store.models import OutboxEntry
from store.outbox import FAILED, PENDING, SENT

log = logging.getLogger(__name__)

LOST = "lost"  # the lease ran out mid-delivery; the entry is another sender's now


@dataclass(frozen=True)
class FlushResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def flush(
    engine: Engine,
    transport: Transport,
    *,
    owner: str,
    max_attempts: int,
    limit: int = 50,
    lease_seconds: int = 300,
) -> FlushResult:
    """Try every due entry once, each while `owner` holds its lease."""
    outcomes: list[str] = []
    while True:
        batch = outbox.claim_due(engine, owner, limit=limit, lease_seconds=lease_seconds)
        outcomes += [_deliver(engine, transport, entry, owner, max_attempts) for entry in batch]
        if len(batch) < limit:
            break
    return FlushResult(outcomes.count(SENT), outcomes.count(PENDING), outcomes.count(FAILED))


def _deliver(
    engine: Engine, transport: Transport, entry: OutboxEntry, owner: str, max_attempts: int
) -> str:
    """Hand one entry to the transport and record what happened; returns its new state."""
    entry_id = entry.id or 0
    try:
        try:
            transport.deliver(entry.recipient, entry.raw, f"outbox-{entry_id}")
        except DeliveryError as exc:
            # A permanent refusal (5xx) fails at once; anything else backs off.
            allowed = 1 if exc.permanent else max_attempts
            state = outbox.mark_failed(
                engine, entry_id, str(exc), max_attempts=allowed, owner=owner
            )
            log.warning("outbox %s to %s: %s (%s)", entry_id, entry.recipient, exc, state)
            return state
        outbox.mark_sent(engine, entry_id, owner=owner)
        return SENT
    except LeaseLostError:
        # Held past its lease and taken over by another sender, whose record stands.
        log.warning("outbox %s: lease lost to another sender; its outcome stands", entry_id)
        return LOST
