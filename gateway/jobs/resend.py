"""`messages resend-reply ID`: the reply of a processed message, written and queued again.

In: the App and a message id. Out: one sealed mail in the outbox to the team's registered
address, encrypted to the team's key as it is NOW, and an audit entry. The case it is
for: a team whose report was accepted while it had no key to encrypt to (its receipt
could not be sent) gets its receipt once a usable key is imported; a team that lost a
reply gets it again.

The reply is written again from what is stored, never from the raw message (which
retention may have deleted, and which would have to be decrypted again): a receipt from
the message's submissions, an error reply from the problems recorded with it, a
duplicate notice naming the message it repeated. A quarantined message has no reply (it
was not authenticated), and the answer to a command is not resent (the team sends the
command again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from contract.codes import MailKind, Reason, State
from contract.errors import ClearinghouseError, RegistryError
from gateway.app import App
from gateway.reply import letter_context, seal_from_gateway
from keys.registry import no_usable_key
from reports.mail import COMMAND_ERROR, DUPLICATE, RECEIPT, REJECTION, Letter, StoredItem, write
from reports.taxonomy_labels import shown_values
from store import outbox
from store.db import transaction
from store.models import Message
from store.registry import get_team_by_id, keys_of_team
from store.spool import get_message
from store.submission_rows import list_submissions, submissions_for_message


@dataclass(frozen=True)
class Resent:
    message_id: int
    kind: MailKind
    team: str
    recipient: str
    key_fingerprint: str
    entry_id: int


def resend_reply(app: App, message_id: int) -> Resent:
    """Write the message's reply again and queue it, sealed to the team's current key."""
    with transaction(app.engine) as s:
        message = get_message(s, message_id, raw=False)
        if message is None:
            raise ClearinghouseError(f"no message {message_id}; see `messages list`")
        letter, context = _letter(app, s, message)
        team = get_team_by_id(s, message.team_id) if message.team_id else None
        if team is None:
            raise ClearinghouseError(f"message {message_id} names no team to reply to")
        key = app.registry.encryption_key(s, team)
        if key is None:
            raise RegistryError(f"no reply sent: {no_usable_key(team.handle)}")
        subject, body = write(letter, **letter_context(app, message, team), **context)
        raw = seal_from_gateway(app, team.email, key, subject, body)
        dedupe = f"{letter.kind}:{message_id}:resent:{app.clock():%Y%m%dT%H%M%S.%f}"
        entry = outbox.enqueue(
            s,
            kind=letter.kind,
            recipient=team.email,
            raw=raw,
            dedupe_key=dedupe,
            message_id=message_id,
        )
        if entry is None or entry.id is None:
            raise ClearinghouseError(f"the reply to message {message_id} was queued already")
        details = f"{letter.kind} of message {message_id} to {team.email}, key {key}"
        app.registry.audit(s, "messages resend-reply", team.handle, details)
        return Resent(message_id, letter.kind, team.handle, team.email, key, entry.id)


def _letter(app: App, s: Session, message: Message) -> tuple[Letter, dict[str, Any]]:
    """The letter the message's outcome calls for, with what only it needs."""
    mid, detail = message.id or 0, message.detail or ""
    if message.state == State.RECEIVED:
        raise ClearinghouseError(f"message {mid} is not processed yet: it has no reply")
    if message.state == State.QUARANTINED:
        raise ClearinghouseError(
            f"message {mid} was quarantined ({message.reason}): it was not authenticated and "
            f"has no reply; `messages reprocess {mid}` runs it through the pipeline again"
        )
    if message.state == State.DUPLICATE:
        original = re.search(r"identical to message (\d+)", detail)
        return DUPLICATE, {"original_id": int(original[1]) if original else "?"}
    if message.state == State.REJECTED and message.reason == Reason.UNKNOWN_COMMAND:
        return COMMAND_ERROR, {"error": detail}
    if message.state == State.REJECTED:
        errors = detail.split("; ") if detail else ["no report found in the signed content"]
        return REJECTION, {"errors": errors}
    if detail.startswith("command:"):
        raise ClearinghouseError(
            f"message {mid} was a command ({detail.split(';')[0]}); its answer is not "
            "resent: the team sends the command again"
        )
    return RECEIPT, _receipt(app, s, message)


def _receipt(app: App, s: Session, message: Message) -> dict[str, Any]:
    team = get_team_by_id(s, message.team_id or 0)
    handle = team.handle if team is not None else None
    rows = {r.id: r for r in list_submissions(s, team=handle, taxonomy=app.taxonomy)}
    items = []
    for sub in submissions_for_message(s, message.id or 0):
        row = rows[sub.id or 0]
        shown = shown_values(row.values, row.counts, app.taxonomy)
        items.append(
            StoredItem(
                sub.type,
                sub.period,
                sub.id or 0,
                sub.revision,
                sub.supersedes_id,
                sub.source,
                shown,
                None,
            )
        )
    signing_key = message.signer_fingerprint or ""
    return {
        "stored": items,
        "signer": _primary(app, s, message, signing_key),
        "signing_key": signing_key,
    }


def _primary(app: App, s: Session, message: Message, signing_key: str) -> str:
    """The team's key that the signing (sub)key belongs to."""
    for key in keys_of_team(s, message.team_id or 0):
        details = app.registry.key_details(key.fingerprint)
        if details is not None and details.owns(signing_key):
            return key.fingerprint
    return signing_key
