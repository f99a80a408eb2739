"""Replies: write one, queue it with the message's outcome, seal it as the gateway.

`queue_reply` renders a letter (reports/mail.py) to a team's registered address and
queues it as a `Draft`, leased to the worker, in the same transaction as the message's
outcome; `seal_drafts` seals those drafts right after that transaction commits, so gpg's
signing runs while other workers (and the SMTP door) can write. A draft whose worker
died before sealing it is sealed by the next outbox flush (`seal_abandoned`).

`seal_from_gateway` seals one outgoing mail as the gateway: From the gateway address,
signed by its key, encrypted to one key fingerprint. Every reply, statistics mail and
reminder goes through it, so that the sender, the signing key, the protected headers
and the recipient-by-fingerprint rule are decided in one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import Session

from contract.errors import GnuPGError
from gateway.app import App
from gateway.notices import withheld
from keys.registry import no_usable_key
from keys.wrap import Attachment, Envelope, new_message_id, seal
from reports.mail import Letter, write
from store import outbox
from store.models import Message, Team
from store.registry import KeyDates, TeamRow
from store.spool import Spooled

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


@dataclass(frozen=True)
class MessageTx:
    """One message inside its processing transaction, and the replies queued in it."""

    app: App
    s: Session
    message: Spooled
    owner: str | None
    drafts: list[Queued]


def queue_reply(
    tx: MessageTx,
    team: Team | TeamRow,
    letter: Letter,
    keys: list[KeyDates] | None = None,
    *,
    content_sha256: str | None = None,
    **context: Any,
) -> str | None:
    """Queue `letter` to the team's registered address in the same transaction.

    It is queued as a draft leased to the worker (`tx.owner`), who seals it once the
    transaction has committed (`seal_drafts`, given `tx.drafts`). Returns a note for the
    admin when no reply can be sealed (the team has no key that can be encrypted to any
    more): the outcome stands, the reply is impossible. `keys` are the team's keys if
    read already. A rejection or notice is withheld (a note again) when the same signed
    content (`content_sha256`) was answered before, or past the hourly limit
    (gateway/notices.py).
    """
    note = withheld(tx.s, tx.app.config.policy, tx.message.id, team, letter.kind, content_sha256)
    if note is not None:
        log.info("message %s: %s", tx.message.id, note)
        return note
    registry = tx.app.registry
    if keys is None:
        recipient_key = registry.encryption_key(tx.s, team)
    else:
        recipient_key = registry.encryption_key_among(team, keys)
    if recipient_key is None:
        note = f"no {letter.kind} sent: {no_usable_key(team.handle)}"
        log.warning("message %s: %s", tx.message.id, note)
        return note
    subject, body = write(letter, **(letter_context(tx.app, tx.message, team) | context))
    draft = Draft(team.email, recipient_key, subject, body)
    entry_id = outbox.enqueue_unsealed(
        tx.s,
        kind=letter.kind,
        recipient=team.email,
        draft=draft.encode(),
        dedupe_key=f"{letter.kind}:{tx.message.id}",
        message_id=tx.message.id,
        owner=tx.owner,
        lease_seconds=tx.app.config.worker.lease_seconds,
    )
    if entry_id is not None:  # else queued (and sealed) by an earlier run already
        tx.drafts.append(Queued(entry_id, draft))
    return None


def letter_context(app: App, message: Spooled | Message, team: Team | TeamRow) -> dict[str, Any]:
    """What every reply's templates may show of the message, the team and the gateway;
    "signer" is given where a template shows it (receipt, quarantine notice)."""
    return {
        "team": team,
        "message_id": message.id,
        "received_at": f"{message.received_at:%Y-%m-%d %H:%M}",
        "clearinghouse": app.config.clearinghouse.name,
        "gateway_address": app.config.clearinghouse.gateway_address,
        "gateway_fingerprint": app.identity.fingerprint,
    }
