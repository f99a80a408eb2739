"""Reminders before the report day, and warnings about team keys that will soon expire.

In: the App and today's date. Out: sealed mails queued in the outbox, each under a dedupe
key, so running this every day (clearinghouse-reminders.timer) sends each reminder and
each warning once.

- A reminder goes to every team whose status may submit and that has stored nothing for
  last month, on the days from `reminder_days_before` days before the report day
  (`day_of_month`) up to the day before it: once per team and month.
- A key warning goes to a team whose bound, unrevoked key expires within
  `key_expiry_warning_days`: once per key and expiry date (extending the key and
  re-importing it starts over).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from gateway.app import App
from gateway.reply import seal_from_gateway
from keys.registry import no_usable_key
from reports.mail import KEY_EXPIRY, REMINDER, Letter, write
from reports.periods import month_name, previous_period, report_day
from store import outbox
from store.db import transaction
from store.models import Team, TeamKey
from store.registry import keys_of_team, list_teams
from store.submission_rows import list_submissions

log = logging.getLogger(__name__)


@dataclass
class ReminderResult:
    period: str
    reminders: list[str] = field(default_factory=list)  # team handles newly reminded
    warnings: list[str] = field(default_factory=list)  # fingerprints newly warned about
    unreachable: list[str] = field(default_factory=list)  # teams with no usable key


def due_date(app: App, today: date) -> date:
    """The report day on which last month's statistics are computed."""
    return report_day(previous_period(today), app.config.reports.day_of_month).date()


def reminder_window(app: App, today: date) -> bool:
    """Whether `today` falls in the days just before this month's report day."""
    days = app.config.reports.reminder_days_before
    due = due_date(app, today)
    return days > 0 and due - timedelta(days=days) <= today < due


def send_reminders(app: App, today: date | None = None) -> ReminderResult:
    today = today or app.clock().date()
    result = ReminderResult(previous_period(today))
    with transaction(app.engine) as s:
        teams = [t for t in list_teams(s) if t.status in app.config.policy.allowed_statuses]
        if reminder_window(app, today):
            for team in teams:
                if not list_submissions(s, team=team.handle, period=result.period):
                    _remind(app, s, team, due_date(app, today), result)
        if app.config.reports.key_expiry_warning_days > 0:
            for team in teams:
                for key in _expiring(app, s, team, today):
                    _warn(app, s, team, key, result)
    return result


def _expiring(app: App, s: Session, team: Team, today: date) -> list[TeamKey]:
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    horizon = now + timedelta(days=app.config.reports.key_expiry_warning_days)
    return [
        k
        for k in keys_of_team(s, team.id or 0)
        if k.revoked_at is None and k.expires_at is not None and now < k.expires_at <= horizon
    ]


def _queue(
    app: App,
    s: Session,
    team: Team,
    letter: Letter,
    dedupe_key: str,
    result: ReminderResult,
    **context: object,
) -> bool:
    if outbox.already_queued(s, dedupe_key):
        return False
    key = app.registry.encryption_key(s, team)
    if key is None:
        log.warning("no %s for team %s: %s", letter.kind, team.handle, no_usable_key(team.handle))
        result.unreachable.append(team.handle)
        return False
    subject, body = write(letter, **_context(app, team), **context)
    raw = seal_from_gateway(app, team.email, key, subject, body)
    entry = outbox.enqueue(
        s, kind=letter.kind, recipient=team.email, raw=raw, dedupe_key=dedupe_key
    )
    return entry is not None


def _context(app: App, team: Team) -> dict[str, object]:
    core = app.config.clearinghouse
    return {
        "team": team,
        "clearinghouse": core.name,
        "gateway_address": core.gateway_address,
        "gateway_fingerprint": app.identity.fingerprint,
    }


def _remind(app: App, s: Session, team: Team, due: date, result: ReminderResult) -> None:
    dedupe = f"reminder:{result.period}:{team.handle}"
    month = month_name(result.period)
    if _queue(
        app, s, team, REMINDER, dedupe, result, period=result.period, month=month, report_day=due
    ):
        result.reminders.append(team.handle)


def _warn(app: App, s: Session, team: Team, key: TeamKey, result: ReminderResult) -> None:
    if key.expires_at is None:  # _expiring selects only keys that expire
        return
    dedupe = f"key-expiry:{key.fingerprint}:{key.expires_at:%Y%m%d}"
    if _queue(
        app,
        s,
        team,
        KEY_EXPIRY,
        dedupe,
        result,
        fingerprint=key.fingerprint,
        expires=key.expires_at,
    ):
        result.warnings.append(key.fingerprint)
