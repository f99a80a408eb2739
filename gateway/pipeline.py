"""One message's path, top to bottom: unwrap → authenticate → deduplicate → parse →
store → reply (docs/architecture.md "One message's path").

In: the id of a spooled message. Out: its final state, reason and any reply, written in
ONE transaction together with the stored submissions and the reply's draft in the
outbox; the reply is sealed (signed and encrypted) right after the commit, outside it.
A crash before the commit leaves the message `received`, so processing it again is
always safe; a crash after it leaves the draft for the next outbox flush to seal; the
outbox's dedupe key makes sure a reply is never queued twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from contract.codes import Reason, State
from gateway.app import App
from gateway.logs import message_event
from gateway.reply import MessageTx, Queued, queue_reply, seal_drafts
from keys.policy import Authenticated, Binding, authenticate
from keys.shapes import Refusal
from keys.unwrap import Unwrapped
from parsers.commands import Command, CommandError, find_command
from parsers.extract import parse_signed_content
from parsers.model import ParseOutcome, Report, Type2Report
from parsers.template import blank_report
from reports.mail import (
    COMMAND_ERROR,
    COMMAND_STATUS,
    COMMAND_TEMPLATE,
    DUPLICATE,
    QUARANTINE,
    RECEIPT,
    REJECTION,
    Letter,
    StoredItem,
)
from reports.taxonomy_labels import shown_values
from store import leases, spool
from store.db import open_session, read_connection, transaction
from store.registry import KeyDates, TeamRow, get_team_by_id
from store.spool import Spooled
from store.submission_rows import list_submissions, stored_values
from store.submissions import lock_team, store_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    state: State  # a final state: accepted, rejected, duplicate or quarantined
    reason: Reason | None
    detail: str | None = None  # for admins: never logged, never mailed to a stranger
    team: str | None = None  # the handle of the signing key's team, if there is one


def process_message(
    app: App, message_id: int, owner: str | None = None, claimed: Spooled | None = None
) -> Outcome:
    """Run every step for one claimed message, commit the result, then report it.

    The log line and the metrics come after the commit, so they never tell of an
    outcome that was rolled back (a lost lease, a failing database); they carry the
    message id, team, state and reason, never anything decrypted.
    """
    drafts: list[Queued] = []  # the replies the committed outcome queued
    message = claimed or _read(app, message_id, inline_bytes(app))
    outcome = _process(app, message, owner, drafts)
    seal_drafts(app, drafts, owner)
    message_event(log, message_id, team=outcome.team, state=outcome.state, reason=outcome.reason)
    app.metrics.outcome(outcome.state, outcome.reason)
    return outcome


# A message above this many bytes is not read with its claim, and only `[worker]
# concurrency` of the worker's threads take one (`Worker`).
LARGE_MESSAGE_BYTES = 2**20


def inline_bytes(app: App) -> int:
    """Up to how many bytes a message is read with its claim (larger: see `_unwrap`)."""
    return min(LARGE_MESSAGE_BYTES, app.config.smtp.max_message_bytes)


def _read(app: App, message_id: int, inline: int) -> Spooled:
    """The message as `leases.claim_next` returns it: its bytes only up to `inline`."""
    with open_session(app.engine) as s:
        return spool.read_for_processing(s, message_id, inline)


def _unwrap(app: App, message: Spooled) -> Unwrapped | Refusal:
    """The message unwrapped; its bytes are handed to unwrap, which lets them go early.

    A large message's bytes were not read with its claim: they are read here, as a
    temporary handed on, unless it is over the cap.
    """
    if message.raw is not None:
        return app.unwrapper.unwrap(message.take_raw())
    cap = app.config.smtp.max_message_bytes
    if message.size > cap:
        return Refusal(Reason.TOO_LARGE, f"{message.size} bytes")
    return app.unwrapper.unwrap(_read(app, message.id, cap).take_raw())


def _process(app: App, message: Spooled, owner: str | None, drafts: list[Queued]) -> Outcome:
    """Run every step for one claimed message and commit the result.

    With `owner` (the worker holding the message's lease), the outcome is recorded only
    if that lease still holds and the message is still `received`; otherwise the whole
    transaction rolls back (`LeaseLostError`), so a message is never processed twice.
    """
    unwrapped = _unwrap(app, message)
    if isinstance(unwrapped, Refusal):
        return _quarantine(app, message, owner, unwrapped, None, drafts)
    domain = _ordering_domain(app, unwrapped)
    verdict, binding, older = _authenticate(app, unwrapped, message.id, domain)
    if isinstance(verdict, Refusal):
        team_id = binding.team_id if binding else None
        return _quarantine(app, message, owner, verdict, unwrapped, drafts, team_id)
    # Decryption ran in parallel; outcomes that store reports commit in arrival order, so a
    # correction is never stored before the report it corrects: among the messages of the
    # team's sending domain only, so that no other sender's slow message holds it.
    if older:
        timeout = app.config.worker.lease_seconds
        leases.wait_for_older(app.engine, message.id, timeout=timeout, domain=domain)
    with transaction(app.engine) as s:
        # One message per team at a time (threads, instances): duplicates and revisions
        # are decided on what the team's previous message committed.
        locked = lock_team(s, verdict.binding.team_id)
        if locked is None:
            raise LookupError(f"team {verdict.binding.team_id} vanished during processing")
        job = _Job(app, s, message, owner, drafts, locked.row, verdict, unwrapped, locked.keys)
        earlier = spool.find_accepted_content(s, job.team.id or 0, unwrapped.content_sha256)
        if earlier is not None and earlier != message.id:
            return _duplicate(job, earlier)
        command = find_command(unwrapped.entity)
        if command is not None:
            return _command(job, command)
        parsed = parse_signed_content(unwrapped.entity, app.clock().date(), app.taxonomy)
        if not parsed.ok:
            return _rejected(job, parsed)
        return _accepted(job, parsed)


@dataclass(frozen=True)
class _Job(MessageTx):
    """One authenticated message inside its processing transaction."""

    team: TeamRow
    verdict: Authenticated
    unwrapped: Unwrapped
    keys: list[KeyDates]  # the team's, read with its lock: what the reply is encrypted to

    def finish(
        self,
        state: State,
        reason: Reason | None,
        detail: str | None = None,
        content_sha256: str | None = None,
    ) -> Outcome:
        return _finish(
            self.s,
            self.message,
            self.owner,
            state,
            reason,
            verdict=self.verdict,
            detail=detail,
            content_sha256=content_sha256,
        )

    def reply(self, letter: Letter, **context: Any) -> str | None:
        sha = self.unwrapped.content_sha256  # an identical content is answered once
        return queue_reply(self, self.team, letter, self.keys, content_sha256=sha, **context)


def _ordering_domain(app: App, u: Unwrapped) -> str | None:
    """The sending domain among whose messages arrival order is kept; None: among all.
    With `sender_binding` on, every message of a team that could be stored comes from its
    registered domain; the door recorded each message's domain so (keys/headers.py)."""
    if app.config.policy.sender_binding == "off" or len(u.outer_from) != 1:
        return None
    return u.outer_from[0].rpartition("@")[2].lower()


def _authenticate(
    app: App, u: Unwrapped, message_id: int, domain: str | None
) -> tuple[Authenticated | Refusal, Binding | None, bool]:
    """The policy's verdict, the registry binding of the signer's key if there is one,
    and whether a message older than `message_id` was in flight (read with the binding).

    A refused message signed by a registered key is listed under that key's team, so an
    admin sees whose key it was; it is still not that team's submission.
    """
    sigs = u.verification.signatures
    primary = sigs[0].primary_fingerprint if len(sigs) == 1 else None
    found, older = None, False
    if primary:
        with read_connection(app.engine) as connection:
            found, older = leases.binding_and_older_in_flight(
                connection, primary, message_id, domain
            )
    binding = app.registry.binding_of(found)
    key = app.registry.key_details(primary) if primary else None
    return authenticate(u, binding, key, app.policy, app.clock()), binding, older


def _finish(
    s: Session,
    message: Spooled,
    owner: str | None,
    state: State,
    reason: Reason | None,
    *,
    verdict: Authenticated | None = None,
    detail: str | None = None,
    content_sha256: str | None = None,
    team_id: int | None = None,
) -> Outcome:
    spool.finish_message(
        s,
        message.id,
        state=state,
        reason=reason,
        detail=detail,
        team_id=verdict.binding.team_id if verdict else team_id,
        signer_fingerprint=verdict.signing_fingerprint if verdict else None,
        content_sha256=content_sha256,
        owner=owner,
        signed_at=verdict.signed_at if verdict else None,
    )
    team = get_team_by_id(s, team_id) if team_id is not None and verdict is None else None
    handle = verdict.binding.handle if verdict else (team.handle if team else None)
    return Outcome(state, reason, detail, handle)


def _quarantine(
    app: App,
    message: Spooled,
    owner: str | None,
    refusal: Refusal,
    u: Unwrapped | None,
    drafts: list[Queued],
    team_id: int | None = None,
) -> Outcome:
    """Not authenticated: store the verdict; reply only to a registered team, if allowed."""
    with transaction(app.engine) as s:
        outcome = _finish(
            s,
            message,
            owner,
            State.QUARANTINED,
            refusal.reason,
            detail=refusal.detail,
            team_id=team_id,
            content_sha256=u.content_sha256 if u else None,  # replays are told apart by it
        )
        if app.config.policy.reply_to_unauthenticated and u is not None:
            _notify_signer(MessageTx(app, s, message, owner, drafts), refusal, u)
    return outcome


def _notify_signer(tx: MessageTx, refusal: Refusal, u: Unwrapped) -> None:
    """Tell a registered team that a message signed with its key was refused.

    Only the reason code goes out, only to the team's registered address, encrypted to
    its key; nothing of the message's content, since the sender is not authenticated.
    """
    sigs = u.verification.signatures
    if len(sigs) != 1 or not sigs[0].primary_fingerprint:
        return
    binding = tx.app.registry.binding(tx.s, sigs[0].primary_fingerprint)
    team = get_team_by_id(tx.s, binding.team_id) if binding else None
    if team is None or binding is None or binding.revoked:
        return
    signer, signing_key = binding.fingerprint, sigs[0].signing_fingerprint
    queue_reply(
        tx,
        team,
        QUARANTINE,
        content_sha256=u.content_sha256,
        reason=refusal.reason,
        signer=signer,
        signing_key=signing_key,
    )


def _duplicate(job: _Job, earlier_id: int) -> Outcome:
    note = job.reply(DUPLICATE, original_id=earlier_id)
    detail = f"identical to message {earlier_id}" + (f"; {note}" if note else "")
    return job.finish(State.DUPLICATE, None, detail, job.unwrapped.content_sha256)


def _rejected(job: _Job, parsed: ParseOutcome) -> Outcome:
    errors = [str(e) for e in parsed.errors] or ["no report found in the signed content"]
    note = job.reply(REJECTION, errors=errors)
    reason = Reason.PARSE_ERROR if parsed.nothing_found else Reason.INVALID_REPORT
    detail = "; ".join(errors)[:2000] + (f"; {note}" if note else "")
    return job.finish(State.REJECTED, reason, detail, job.unwrapped.content_sha256)


def _accepted(job: _Job, parsed: ParseOutcome) -> Outcome:
    items = [_store(job, report) for report in parsed.reports]
    # The primary fingerprint is the one the team gave the operator; a subkey that
    # signed is named beside it.
    signer, signing_key = job.verdict.binding.fingerprint, job.verdict.signing_fingerprint
    note = job.reply(RECEIPT, stored=items, signer=signer, signing_key=signing_key)
    return job.finish(State.ACCEPTED, None, note, job.unwrapped.content_sha256)


def _command(job: _Job, command: Command | CommandError) -> Outcome:
    """Answer a team command; the answer goes, like every reply, only to the team."""
    if isinstance(command, CommandError):
        job.reply(COMMAND_ERROR, error=command.message)
        sha = job.unwrapped.content_sha256
        return job.finish(State.REJECTED, Reason.UNKNOWN_COMMAND, command.message, sha)
    if command.verb == "template":
        blank = blank_report(command.argument, job.app.taxonomy, vocabulary=command.taxonomy)
        note = job.reply(COMMAND_TEMPLATE, report=blank, report_type=command.argument)
    else:
        taxonomy = job.app.taxonomy
        rows = list_submissions(
            job.s, team=job.team.handle, period=command.argument, taxonomy=taxonomy
        )
        shown = [(r, shown_values(r.values, r.counts, taxonomy)) for r in rows]
        note = job.reply(COMMAND_STATUS, rows=shown, period=command.argument)
    detail = f"command: {command.verb} {command.argument}" + (f"; {note}" if note else "")
    return job.finish(State.ACCEPTED, None, detail, job.unwrapped.content_sha256)


def _store(job: _Job, report: Report) -> StoredItem:
    sub = store_report(job.s, job.team.id or 0, report, job.message.id)
    counts = report.count_lines() if isinstance(report, Type2Report) else ()
    claimed = report.claimed_team
    return StoredItem(
        report.type,
        report.period,
        sub.id or 0,
        sub.revision,
        sub.supersedes_id,
        report.source,
        shown_values(stored_values(report), counts, job.app.taxonomy),
        claimed if claimed and claimed.lower() != job.team.handle.lower() else None,
    )
