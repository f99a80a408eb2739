"""One message's path, top to bottom: unwrap → authenticate → deduplicate → parse →
store → reply (SPEC.md "Flow of one message", steps 2–6).

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

from contract.errors import RegistryError
from gateway.app import App
from gateway.logs import message_event
from gateway.reply import Draft, Queued, seal_drafts
from keys.policy import Authenticated, Binding, authenticate
from keys.unwrap import Refusal, Unwrapped
from parsers.commands import Command, CommandError, find_command
from parsers.extract import parse_signed_content
from parsers.model import ParseOutcome, Report
from parsers.template import blank_report
from reports.mail import SUBJECTS, StoredItem, format_value, receipt_subject, render
from store import leases, outbox, spool
from store.db import open_session, read_connection, transaction
from store.models import Team
from store.registry import KeyDates, TeamRow, get_team_by_id
from store.spool import Spooled
from store.submissions import list_submissions, lock_team, store_report, stored_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    state: str  # accepted | rejected | duplicate | quarantined
    reason: str | None
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
        return Refusal("too-large", f"{message.size} bytes")
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
    verdict, binding, older = _authenticate(app, unwrapped, message.id)
    if isinstance(verdict, Refusal):
        team_id = binding.team_id if binding else None
        return _quarantine(app, message, owner, verdict, unwrapped, drafts, team_id)
    # Decryption ran in parallel; outcomes that store reports commit in arrival order, so a
    # correction is never stored before the report it corrects.
    if older:
        leases.wait_for_older(app.engine, message.id, timeout=app.config.worker.lease_seconds)
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
class _Tx:
    """One message inside its processing transaction, and the replies queued in it."""

    app: App
    s: Session
    message: Spooled
    owner: str | None
    drafts: list[Queued]


@dataclass(frozen=True)
class _Job(_Tx):
    """One authenticated message inside its processing transaction."""

    team: TeamRow
    verdict: Authenticated
    unwrapped: Unwrapped
    keys: list[KeyDates]  # the team's, read with its lock: what the reply is encrypted to

    def finish(
        self,
        state: str,
        reason: str | None,
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

    def reply(self, kind: str, subject: str, template: str, **context: Any) -> str | None:
        body = render(template, **(_context(self.app, self.message, self.team) | context))
        return _reply(self, self.team, kind, body, subject, self.keys)


def _authenticate(
    app: App, u: Unwrapped, message_id: int
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
            found, older = leases.binding_and_older_in_flight(connection, primary, message_id)
    binding = app.registry.binding_of(found)
    key = app.registry.key_details(primary) if primary else None
    return authenticate(u, binding, key, app.policy, app.clock()), binding, older


def _finish(
    s: Session,
    message: Spooled,
    owner: str | None,
    state: str,
    reason: str | None,
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
            s, message, owner, "quarantined", refusal.reason, detail=refusal.detail, team_id=team_id
        )
        if app.config.policy.reply_to_unauthenticated and u is not None:
            _notify_signer(_Tx(app, s, message, owner, drafts), refusal, u)
    return outcome


def _notify_signer(tx: _Tx, refusal: Refusal, u: Unwrapped) -> None:
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
    context = _context(tx.app, tx.message, team) | {
        "reason": refusal.reason,
        "signer": sigs[0].signing_fingerprint,
    }
    body = render("quarantine", **context)
    _reply(tx, team, "quarantine", body, SUBJECTS["quarantine"])


def _duplicate(job: _Job, earlier_id: int) -> Outcome:
    job.reply("duplicate", SUBJECTS["duplicate"], "duplicate", original_id=earlier_id)
    return job.finish("duplicate", None, f"identical to message {earlier_id}")


def _rejected(job: _Job, parsed: ParseOutcome) -> Outcome:
    errors = [str(e) for e in parsed.errors] or ["no report found in the signed content"]
    job.reply("rejection", SUBJECTS["rejection"], "rejection", errors=errors)
    reason = "parse-error" if parsed.nothing_found else "invalid-report"
    return job.finish("rejected", reason, "; ".join(errors)[:2000])


def _accepted(job: _Job, parsed: ParseOutcome) -> Outcome:
    items = [_store(job, report) for report in parsed.reports]
    note = job.reply(
        "receipt",
        receipt_subject(items),
        "receipt",
        stored=items,
        signer=job.verdict.signing_fingerprint,
    )
    return job.finish("accepted", None, note, job.unwrapped.content_sha256)


def _command(job: _Job, command: Command | CommandError) -> Outcome:
    """Answer a team command; the answer goes, like every reply, only to the team."""
    if isinstance(command, CommandError):
        job.reply(
            "command-error", SUBJECTS["command-error"], "command_error", error=command.message
        )
        return job.finish("rejected", "unknown-command", command.message)
    if command.verb == "template":
        blank = blank_report(command.argument, job.app.taxonomy)
        subject = f"Template: {command.argument}"
        note = job.reply(
            "command", subject, "command_template", report=blank, report_type=command.argument
        )
    else:
        rows = list_submissions(job.s, team=job.team.handle, period=command.argument)
        shown = [
            (r, [(_label(job.app, r.type, k), format_value(v)) for k, v in r.values.items()])
            for r in rows
        ]
        subject = f"Status: {command.argument}"
        note = job.reply("command", subject, "command_status", rows=shown, period=command.argument)
    detail = f"command: {command.verb} {command.argument}" + (f"; {note}" if note else "")
    return job.finish("accepted", None, detail, job.unwrapped.content_sha256)


def _store(job: _Job, report: Report) -> StoredItem:
    sub = store_report(job.s, job.team.id or 0, report, job.message.id)
    values = stored_values(report)
    claimed = report.claimed_team
    return StoredItem(
        report.type,
        report.period,
        sub.id or 0,
        sub.revision,
        sub.supersedes_id,
        report.source,
        [(_label(job.app, report.type, k), format_value(v)) for k, v in values.items()],
        claimed if claimed and claimed.lower() != job.team.handle.lower() else None,
    )


def _label(app: App, report_type: str, key: str) -> str:
    """How a stored key is shown: type 2 keys by their taxonomy display name."""
    if report_type != "type2":
        return key
    class_slug, _, type_slug = key.partition("/")
    return app.taxonomy.label((class_slug, type_slug or None))


def _context(app: App, message: Spooled, team: Team | TeamRow) -> dict[str, Any]:
    # "signer" is given where a template shows it (receipt, quarantine notice).
    return {
        "team": team,
        "message_id": message.id,
        "received_at": f"{message.received_at:%Y-%m-%d %H:%M}",
        "clearinghouse": app.config.clearinghouse.name,
        "gateway_address": app.config.clearinghouse.gateway_address,
        "gateway_fingerprint": app.identity.fingerprint,
    }


def _reply(
    tx: _Tx,
    team: Team | TeamRow,
    kind: str,
    body: str,
    subject: str,
    keys: list[KeyDates] | None = None,
) -> str | None:
    """Queue a reply to the team's registered address in the same transaction.

    It is queued as a draft leased to the worker (`tx.owner`), who seals it once the
    transaction has committed (`seal_drafts`, given `tx.drafts`). Returns a note for the
    admin when no reply can be sealed (the team has no key that can be encrypted to any
    more): the outcome stands, the reply is impossible. `keys` are the team's keys if
    read already.
    """
    registry = tx.app.registry
    try:
        if keys is None:
            recipient_key = registry.encryption_key(tx.s, team)
        else:
            recipient_key = registry.encryption_key_among(team, keys)
    except RegistryError as exc:
        log.warning("message %s: no %s sent: %s", tx.message.id, kind, exc)
        return f"no {kind} sent: {exc}"
    draft = Draft(team.email, recipient_key, subject, body)
    entry_id = outbox.enqueue_unsealed(
        tx.s,
        kind=kind,
        recipient=team.email,
        draft=draft.encode(),
        dedupe_key=f"{kind}:{tx.message.id}",
        message_id=tx.message.id,
        owner=tx.owner,
        lease_seconds=tx.app.config.worker.lease_seconds,
    )
    if entry_id is not None:  # else queued (and sealed) by an earlier run already
        tx.drafts.append(Queued(entry_id, draft))
    return None
