"""Deliver the outbox: claim due entries, hand them to the transport, record the result.

Entries are sealed before they are queued, so this step never sees plaintext. Delivery
is at-least-once: a crash between the transport's success and `mark_sent` delivers the
entry again (the maildir transport makes that idempotent by file name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.delivery import Transport
from gateway.errors import DeliveryError
from store import outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def flush(
    engine: Engine, transport: Transport, *, owner: str, max_attempts: int, limit: int = 50
) -> FlushResult:
    """Try every due entry once."""
    sent = retrying = failed = 0
    while True:
        batch = outbox.claim_due(engine, owner, limit=limit)
        if not batch:
            break
        for entry in batch:
            entry_id = entry.id or 0
            try:
                transport.deliver(entry.recipient, entry.raw, f"outbox-{entry_id}")
            except DeliveryError as exc:
                # A permanent refusal (5xx) fails at once; anything else backs off.
                allowed = 1 if exc.permanent else max_attempts
                state = outbox.mark_failed(engine, entry_id, str(exc), max_attempts=allowed)
                log.warning("outbox %s to %s: %s (%s)", entry_id, entry.recipient, exc, state)
                failed += state == "failed"
                retrying += state != "failed"
                continue
            outbox.mark_sent(engine, entry_id)
            sent += 1
        if len(batch) < limit:
            break
    return FlushResult(sent, retrying, failed)
