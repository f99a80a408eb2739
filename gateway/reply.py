"""Seal one outgoing mail as the gateway: From the gateway address, signed by its key.

Every reply, statistics mail and reminder goes through here, so that the sender, the
signing key, the protected headers and the recipient-by-fingerprint rule are decided in
one place. Queuing it is the caller's business (in its own transaction).

Replies to incoming messages are queued as a `Draft` with the message's outcome and
sealed by `seal_drafts` right after that transaction commits: gpg's signing then runs
while other workers (and the SMTP door) can write. A draft whose worker died before
sealing it is sealed by the next outbox flush (`seal_abandoned`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from contract.errors import GnuPGError
from gateway.app import App
from keys.wrap import Attachment, Envelope, new_message_id, seal
from store import outbox

log = logging.getLogger(__name__)

SEAL_RETRY_SECONDS = 60  # a draft whose sealing failed waits this long for the next try


def seal_from_gateway(
    app: App,
    recipient: str,
    key_fingerprint: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """Signed by the gateway key, encrypted to `key_fingerprint`, addressed to `recipient`."""
    sender = app.config.clearinghouse.gateway_address
    env = Envelope(
        sender, recipient, subject, app.clock(), new_message_id(sender.rpartition("@")[2])
    )
    return seal(
        app.gpg,
        env,
        body,
        recipient_fingerprints=[key_fingerprint],
        signer=app.identity.fingerprint,
        passphrase=app.identity.passphrase,
        attachments=attachments,
    )


@dataclass(frozen=True)
class Draft:
    """A reply decided inside a processing transaction, to be sealed after its commit."""

    recipient: str  # the team's registered address
    key_fingerprint: str  # the team key it is encrypted to
    subject: str
    body: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Draft:
        return cls(**json.loads(data))


@dataclass(frozen=True)
class Queued:
    """A draft queued in the outbox by a transaction that has committed since."""

    entry_id: int
    draft: Draft


def seal_drafts(app: App, drafts: Sequence[Queued], owner: str | None) -> int:
    """Seal drafts whose outcome has committed, as the worker still holds them; how many.

    A draft that cannot be sealed now (gpg failing) stays queued for `seal_abandoned`:
    the outcome is committed either way.
    """
    return sum(_seal(app, queued.entry_id, queued.draft, owner) for queued in drafts)


def seal_abandoned(app: App, owner: str, *, lease_seconds: int) -> int:
    """Seal drafts that nobody is sealing (their worker died); returns how many."""
    sealed = 0
    while batch := outbox.claim_unsealed(app.engine, owner, lease_seconds=lease_seconds):
        sealed += sum(_seal_one(app, entry_id, draft, owner) for entry_id, draft in batch)
    return sealed


def _seal_one(app: App, entry_id: int, data: bytes, owner: str | None) -> bool:
    return _seal(app, entry_id, Draft.decode(data), owner)


def _seal(app: App, entry_id: int, draft: Draft, owner: str | None) -> bool:
    try:
        raw = seal_from_gateway(
            app, draft.recipient, draft.key_fingerprint, draft.subject, draft.body
        )
    except GnuPGError as exc:
        log.warning("outbox %s: could not seal the reply, retrying later: %s", entry_id, exc)
        outbox.seal_failed(app.engine, entry_id, str(exc), retry_seconds=SEAL_RETRY_SECONDS)
        return False
    return outbox.seal(app.engine, entry_id, raw, owner=owner)
