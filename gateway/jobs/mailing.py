"""Who gets which monthly mail; each one sealed to its recipient and queued once.

In: the computed statistics and summary, the files just written, the App (registry,
keyring, gateway identity). Out: outbox entries, and a `Delivery` saying what happened.

Who gets what:
- every team with a report of type N for the month: one mail with its personalised
  internal-typeN.pdf for each such type (its own row marked) and public.pdf; to its
  registered contact address, encrypted to its newest usable key. Suspended teams get
  nothing;
- every coordinator: one mail with coordinator-summary.pdf, the unmarked internal PDF
  of each type that any team submitted, and public.pdf, encrypted to the coordinator key.
Every mail is PGP/MIME signed by the gateway key and encrypted (keys/wrap.py); raw
submissions are never attached. A recipient without a usable key is skipped and named.

The dedupe key is "monthly:PERIOD:team:HANDLE" or "monthly:PERIOD:coordinator:ADDRESS",
plus ":resend-N" for generation N: a rerun finds its keys queued and adds nothing; only
recipients not mailed yet in this generation (say, a team whose first report came late)
get a mail. Keys name teams by handle, so a changed contact address is no reason to
mail again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from contract.codes import MailKind
from contract.errors import GnuPGError
from gateway.app import App
from gateway.reply import seal_from_gateway
from keys.registry import no_usable_key
from keys.wrap import Attachment
from reports.internal_pdf import Reader, internal_pdf
from reports.mail import MONTHLY_COORDINATOR, MONTHLY_TEAM, write
from reports.periods import month_name
from reports.statistics import TYPES, MonthlyStatistics
from reports.summary import CoordinatorSummary
from store import outbox
from store.db import open_session
from store.models import Team
from store.registry import list_coordinators, list_teams
from store.statistics import queued_keys

log = logging.getLogger(__name__)
PDF = "application/pdf"


@dataclass(frozen=True)
class Delivery:
    generation: int
    queued: int  # new outbox entries
    already: int  # recipients whose mail this generation was queued before
    skipped: tuple[str, ...]  # "recipient: why" for those who could not be mailed


@dataclass(frozen=True)
class Sealed:
    """The mails of one run, sealed and waiting to be queued in one transaction."""

    mails: tuple[tuple[str, str, str, bytes], ...]  # (dedupe key, recipient, role, raw)
    already: int
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    """One mail to build, unless its dedupe key is queued already."""

    dedupe_key: str
    recipient: str
    role: str  # team | coordinator
    key: str | None  # fingerprint to encrypt to; None: no usable key (see `problem`)
    problem: str | None
    build: Callable[[], tuple[str, str, list[Attachment]]]  # subject, body, attachments


def seal_mails(
    app: App,
    stats: MonthlyStatistics,
    summary: CoordinatorSummary,
    files: dict[str, bytes],
    *,
    generation: int,
    progress: Callable[[str], None],
) -> Sealed:
    """Seal the mails of `generation` not queued yet (gpg runs outside any transaction)."""
    with open_session(app.engine) as s:
        plans = list(_plans(app, s, stats, summary, files, generation))
        known = queued_keys(s, [plan.dedupe_key for plan in plans])
    mails: list[tuple[str, str, str, bytes]] = []
    skipped: list[str] = []
    for plan in plans:
        if plan.dedupe_key in known:
            progress(f"{plan.recipient} ({plan.role}): queued before, not again (see --resend)")
            continue
        raw, problem = _seal(app, plan)
        if raw is None:
            skipped.append(f"{plan.recipient}: {problem}")
            progress(f"{plan.recipient} ({plan.role}): NOT mailed: {problem}")
            continue
        mails.append((plan.dedupe_key, plan.recipient, plan.role, raw))
    return Sealed(tuple(mails), len(known), tuple(skipped))


def enqueue_mails(s: Session, sealed: Sealed, progress: Callable[[str], None]) -> int:
    """Queue the sealed mails in the caller's transaction; returns how many were new."""
    queued = 0
    for dedupe_key, recipient, role, raw in sealed.mails:
        entry = outbox.enqueue(
            s, kind=MailKind.MONTHLY, recipient=recipient, raw=raw, dedupe_key=dedupe_key
        )
        if entry is not None:
            queued += 1
            progress(f"{recipient} ({role}): queued")
    return queued


def _seal(app: App, plan: _Plan) -> tuple[bytes | None, str | None]:
    if plan.key is None:
        return None, plan.problem
    subject, body, attachments = plan.build()
    try:
        raw = seal_from_gateway(app, plan.recipient, plan.key, subject, body, attachments)
    except GnuPGError as exc:
        log.warning("monthly mail to %s not sealed: %s", plan.recipient, exc)
        return None, f"could not encrypt to key {plan.key}: {exc}"
    return raw, None


def _dedupe_key(period: str, role: str, who: str, generation: int) -> str:
    key = f"monthly:{period}:{role}:{who}"
    return f"{key}:resend-{generation}" if generation else key


def _plans(
    app: App,
    s: Session,
    stats: MonthlyStatistics,
    summary: CoordinatorSummary,
    files: dict[str, bytes],
    generation: int,
) -> Iterator[_Plan]:
    teams = {team.id: team for team in list_teams(s)}
    entitled: dict[int, list[str]] = {}
    for report_type in TYPES:
        for row in stats.of(report_type).rows:
            entitled.setdefault(row.team_id, []).append(report_type)
    for team_id, types in sorted(entitled.items(), key=lambda item: teams[item[0]].handle):
        team = teams[team_id]
        if team.status == "suspended":
            continue
        key = app.registry.encryption_key(s, team)
        problem = None if key is not None else no_usable_key(team.handle)
        yield _Plan(
            _dedupe_key(stats.period, "team", team.handle, generation),
            team.email,
            "team",
            key,
            problem,
            _team_mail(app, stats, files, team, types, generation),
        )
    for coordinator in list_coordinators(s):
        yield _Plan(
            _dedupe_key(stats.period, "coordinator", coordinator.email, generation),
            coordinator.email,
            "coordinator",
            coordinator.fingerprint,
            None,
            _coordinator_mail(app, stats, summary, files, coordinator.name, generation),
        )


def _context(app: App, stats: MonthlyStatistics, generation: int) -> dict[str, Any]:
    return {
        "period": stats.period,
        "month": month_name(stats.period),
        "clearinghouse": app.config.clearinghouse.name,
        "gateway_address": app.config.clearinghouse.gateway_address,
        "gateway_fingerprint": app.identity.fingerprint,
        "minimum": stats.minimum,
        "resend": generation > 0,
    }


def _team_mail(
    app: App,
    stats: MonthlyStatistics,
    files: dict[str, bytes],
    team: Team,
    types: list[str],
    generation: int,
) -> Callable[[], tuple[str, str, list[Attachment]]]:
    def build() -> tuple[str, str, list[Attachment]]:
        reader = Reader(team.id or 0, f"{team.name} ({team.handle})")
        name = app.config.clearinghouse.name
        attachments = [
            Attachment(
                f"{stats.period}-internal-{t}.pdf", PDF, internal_pdf(stats, t, name, reader)
            )
            for t in types
        ]
        attachments.append(Attachment(f"{stats.period}-public.pdf", PDF, files["public.pdf"]))
        own = [
            (attachments[i].filename, stats.of(t).row_of(team.id or 0)) for i, t in enumerate(types)
        ]
        context = _context(app, stats, generation) | {
            "team": team,
            "internal": [(filename, row.pseudonym) for filename, row in own if row is not None],
            "attachments": [a.filename for a in attachments],
        }
        return (*write(MONTHLY_TEAM, **context), attachments)

    return build


def _coordinator_mail(
    app: App,
    stats: MonthlyStatistics,
    summary: CoordinatorSummary,
    files: dict[str, bytes],
    name: str | None,
    generation: int,
) -> Callable[[], tuple[str, str, list[Attachment]]]:
    def build() -> tuple[str, str, list[Attachment]]:
        chosen = ["coordinator-summary.pdf"]
        chosen += [f"internal-{t}.pdf" for t in TYPES if stats.of(t).teams]
        chosen.append("public.pdf")
        attachments = [Attachment(f"{stats.period}-{f}", PDF, files[f]) for f in chosen]
        context = _context(app, stats, generation) | {
            "name": name,
            "summary": summary,
            "expected": sum(1 for line in summary.teams if line.expected),
            "types": [(f"Type {t[-1]}", summary.submitted(t)) for t in TYPES],
            "quarantined": sum(n for _, n in summary.quarantined),
            "rejected": sum(n for _, _, n in summary.rejected),
            "attachments": [a.filename for a in attachments],
        }
        return (*write(MONTHLY_COORDINATOR, **context), attachments)

    return build
