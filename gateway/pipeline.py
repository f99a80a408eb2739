"""One message's path, top to bottom: unwrap → authenticate → deduplicate → parse →
store → reply (SPEC.md "Flow of one message", steps 2–6).

In: the id of a spooled message. Out: its final state, reason and any reply, written in
ONE transaction together with the stored submissions and the sealed reply in the outbox.
A crash before the commit leaves the message `received`, so processing it again is
always safe; the outbox's dedupe key makes sure a reply is never queued twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from gateway.app import App
from gateway.errors import RegistryError
from keys.policy import Authenticated, authenticate
from keys.unwrap import Refusal, Unwrapped
from keys.wrap import Envelope, new_message_id, seal
from parsers.extract import parse_signed_content
from parsers.model import ParseOutcome
from reports.mail import SUBJECTS, StoredItem, format_value, receipt_subject, render
from store import outbox, spool
from store.db import open_session, transaction
from store.models import Message, Team
from store.registry import get_team_by_id
from store.submissions import store_report, submission_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    state: str  # accepted | rejected | duplicate | quarantined
    reason: str | None
    detail: str | None = None


def process_message(app: App, message_id: int) -> Outcome:
    """Run every step for one claimed message and commit the result."""
    with open_session(app.engine) as s:
        message = _load(s, message_id)
        raw, size = message.raw, message.size
    if size > app.config.smtp.max_message_bytes:
        return _quarantine(app, message_id, Refusal("too-large", f"{size} bytes"), None)
    unwrapped = app.unwrapper.unwrap(raw)
    if isinstance(unwrapped, Refusal):
        return _quarantine(app, message_id, unwrapped, None)
    verdict = _authenticate(app, unwrapped)
    if isinstance(verdict, Refusal):
        return _quarantine(app, message_id, verdict, unwrapped)
    with transaction(app.engine) as s:
        message = _load(s, message_id)
        team = get_team_by_id(s, verdict.binding.team_id)
        if team is None:
            raise LookupError(f"team {verdict.binding.team_id} vanished during processing")
        earlier = spool.find_accepted_content(s, team.id or 0, unwrapped.content_sha256)
        if earlier is not None and earlier.id != message_id:
            return _duplicate(app, s, message, team, verdict, unwrapped, earlier)
        parsed = parse_signed_content(unwrapped.entity, app.clock().date(), app.taxonomy)
        if not parsed.ok:
            return _rejected(app, s, message, team, verdict, unwrapped, parsed)
        return _accepted(app, s, message, team, verdict, unwrapped, parsed)


def _load(s: Session, message_id: int) -> Message:
    message = spool.get_message(s, message_id)
    if message is None:
        raise LookupError(f"message {message_id} does not exist")
    return message


def _authenticate(app: App, u: Unwrapped) -> Authenticated | Refusal:
    sigs = u.verification.signatures
    primary = sigs[0].primary_fingerprint if len(sigs) == 1 else None
    with open_session(app.engine) as s:
        binding = app.registry.binding(s, primary) if primary else None
    key = app.registry.key_details(primary) if primary else None
    return authenticate(u, binding, key, app.policy, app.clock())


def _finish(
    s: Session,
    message: Message,
    state: str,
    reason: str | None,
    *,
    verdict: Authenticated | None = None,
    detail: str | None = None,
    content_sha256: str | None = None,
) -> Outcome:
    spool.finish_message(
        s,
        message.id or 0,
        state=state,
        reason=reason,
        detail=detail,
        team_id=verdict.binding.team_id if verdict else None,
        signer_fingerprint=verdict.signing_fingerprint if verdict else None,
        content_sha256=content_sha256,
    )
    log.info("message %s %s%s", message.id, state, f" ({reason})" if reason else "")
    return Outcome(state, reason, detail)


def _quarantine(app: App, message_id: int, refusal: Refusal, u: Unwrapped | None) -> Outcome:
    """Not authenticated: store the verdict; reply only to a registered team, if allowed."""
    with transaction(app.engine) as s:
        message = _load(s, message_id)
        outcome = _finish(s, message, "quarantined", refusal.reason, detail=refusal.detail)
        if app.config.policy.reply_to_unauthenticated and u is not None:
            _notify_signer(app, s, message, refusal, u)
    return outcome


def _notify_signer(app: App, s: Session, message: Message, refusal: Refusal, u: Unwrapped) -> None:
    """Tell a registered team that a message signed with its key was refused.

    Only the reason code goes out, only to the team's registered address, encrypted to
    its key; nothing of the message's content, since the sender is not authenticated.
    """
    sigs = u.verification.signatures
    if len(sigs) != 1 or not sigs[0].primary_fingerprint:
        return
    binding = app.registry.binding(s, sigs[0].primary_fingerprint)
    team = get_team_by_id(s, binding.team_id) if binding else None
    if team is None or binding is None or binding.revoked:
        return
    context = _context(app, message, team) | {
        "reason": refusal.reason,
        "signer": sigs[0].signing_fingerprint,
    }
    _reply(
        app, s, message, team, "quarantine", SUBJECTS["quarantine"], render("quarantine", **context)
    )


def _duplicate(
    app: App,
    s: Session,
    message: Message,
    team: Team,
    verdict: Authenticated,
    u: Unwrapped,
    earlier: Message,
) -> Outcome:
    context = _context(app, message, team) | {"original_id": earlier.id}
    _reply(
        app, s, message, team, "duplicate", SUBJECTS["duplicate"], render("duplicate", **context)
    )
    return _finish(
        s, message, "duplicate", None, verdict=verdict, detail=f"identical to message {earlier.id}"
    )


def _rejected(
    app: App,
    s: Session,
    message: Message,
    team: Team,
    verdict: Authenticated,
    u: Unwrapped,
    parsed: ParseOutcome,
) -> Outcome:
    errors = [str(e) for e in parsed.errors] or ["no report found in the signed content"]
    context = _context(app, message, team) | {"errors": errors}
    _reply(
        app, s, message, team, "rejection", SUBJECTS["rejection"], render("rejection", **context)
    )
    reason = "parse-error" if parsed.nothing_found else "invalid-report"
    return _finish(s, message, "rejected", reason, verdict=verdict, detail="; ".join(errors)[:2000])


def _accepted(
    app: App,
    s: Session,
    message: Message,
    team: Team,
    verdict: Authenticated,
    u: Unwrapped,
    parsed: ParseOutcome,
) -> Outcome:
    items = []
    for report in parsed.reports:
        sub = store_report(s, team.id or 0, report, message.id or 0)
        values = submission_values(s, sub)
        claimed = report.claimed_team
        items.append(
            StoredItem(
                report.type,
                report.period,
                sub.id or 0,
                sub.revision,
                sub.supersedes_id,
                report.source,
                [(k, format_value(v)) for k, v in values.items()],
                claimed if claimed and claimed.lower() != team.handle.lower() else None,
            )
        )
    context = _context(app, message, team) | {
        "stored": items,
        "signer": verdict.signing_fingerprint,
    }
    sent = _reply(
        app, s, message, team, "receipt", receipt_subject(items), render("receipt", **context)
    )
    return _finish(
        s, message, "accepted", None, verdict=verdict, detail=sent, content_sha256=u.content_sha256
    )


def _context(app: App, message: Message, team: Team) -> dict[str, Any]:
    return {
        "team": team,
        "message_id": message.id,
        "received_at": f"{message.received_at:%Y-%m-%d %H:%M}",
        "clearinghouse": app.config.clearinghouse.name,
        "gateway_address": app.config.clearinghouse.gateway_address,
        "gateway_fingerprint": app.identity.fingerprint,
        "signer": message.signer_fingerprint,
    }


def _reply(
    app: App, s: Session, message: Message, team: Team, kind: str, subject: str, body: str
) -> str | None:
    """Seal a reply to the team's registered address and queue it in the same transaction.

    Returns a note for the admin when no reply could be sealed (the team has no key that
    can be encrypted to any more): the outcome stands, the reply is impossible.
    """
    sender = app.config.clearinghouse.gateway_address
    env = Envelope(
        sender, team.email, subject, app.clock(), new_message_id(sender.rpartition("@")[2])
    )
    try:
        recipient_key = app.registry.encryption_key(s, team)
    except RegistryError as exc:
        log.warning("message %s: no %s sent: %s", message.id, kind, exc)
        return f"no {kind} sent: {exc}"
    raw = seal(
        app.gpg,
        env,
        body,
        recipient_fingerprints=[recipient_key],
        signer=app.identity.fingerprint,
        passphrase=app.identity.passphrase,
    )
    outbox.enqueue(
        s,
        kind=kind,
        recipient=team.email,
        raw=raw,
        dedupe_key=f"{kind}:{message.id}",
        message_id=message.id,
    )
    return None
