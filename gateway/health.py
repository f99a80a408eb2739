"""`clearinghouse health`: is the gateway doing its job? One verdict per check.

In: the `App` (its store, its keyring, `[health]` thresholds) and the time. Out: a list
of `Check`s; the command exits non-zero when any failed, so a monitoring system, a
systemd timer or a human can run it. Checked:

- outbox: a reply has been waiting longer than `outbox_stuck_minutes` (the relay or
  maildir is refusing mail, or nothing runs `serve`);
- spool: more than `spool_backlog` messages are waiting to be processed (the worker is
  down or cannot keep up);
- gateway-key: the gateway key, or its last encryption subkey, expires within
  `key_expiry_days` (teams can no longer encrypt to it, receipts can no longer be signed);
- ti-directory, ti-keys: the sync from the Trusted Introducer directory has not seen a
  linked team for too long, or a bound key expires soon by TI's date
  (when no team is linked, both pass, saying so).
- team-keys: a team whose status allows submitting has no key the gateway can both
  verify and encrypt to (its reports would be refused, or accepted and never answered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from contract.codes import State
from contract.errors import ClearinghouseError
from gateway.app import App
from keys.keycheck import assess
from store.db import open_session
from store.models import TeamKey
from store.monitoring import backlog
from store.registry import (
    bound_keys_ti_expiring,
    keys_of_team,
    linked_teams,
    list_teams,
    ti_links_seen_before,
)
from store.spool import count_in_state


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(app: App, now: datetime) -> list[Check]:
    return [
        check_outbox(app, now),
        check_spool(app),
        check_gateway_key(app, now),
        check_directory(app, now),
        check_directory_keys(app, now),
        check_team_keys(app, now),
    ]


def check_outbox(app: App, now: datetime) -> Check:
    limit = timedelta(minutes=app.config.health.outbox_stuck_minutes)
    with open_session(app.engine) as s:
        pending, oldest = backlog(s)
    if oldest is None:
        return Check("outbox", True, "nothing waiting for delivery")
    age = now - oldest
    text = f"{pending} waiting for delivery, the oldest for {_duration(age)}"
    if age > limit:
        return Check(
            "outbox",
            False,
            f"{text} (limit {_duration(limit)}): see `outbox list` for the last error",
        )
    return Check("outbox", True, text)


def check_spool(app: App) -> Check:
    limit = app.config.health.spool_backlog
    with open_session(app.engine) as s:
        waiting = count_in_state(s, State.RECEIVED)
    text = f"{waiting} message{'s' if waiting != 1 else ''} waiting to be processed"
    if waiting > limit:
        return Check("spool", False, f"{text} (limit {limit}): is `serve` running?")
    return Check("spool", True, text)


def check_gateway_key(app: App, now: datetime) -> Check:
    try:
        fingerprint = app.identity.fingerprint
        key = app.gpg.details(fingerprint)
    except ClearinghouseError as exc:
        return Check("gateway-key", False, str(exc))
    if key is None:
        return Check("gateway-key", False, f"key {fingerprint} is missing from the keyring")
    if key.revoked:
        return Check("gateway-key", False, f"key {fingerprint} is revoked")
    ends = assess(key, now).until
    if ends is None:
        return Check("gateway-key", True, f"{fingerprint} does not expire")
    left = ends - now
    text = f"{fingerprint} expires {ends:%Y-%m-%d %H:%M} UTC"
    if left <= timedelta(days=app.config.health.key_expiry_days):
        state = "EXPIRED" if left <= timedelta(0) else f"in {_duration(left)}"
        return Check(
            "gateway-key",
            False,
            f"{text} ({state}): extend it (gpg --quick-set-expire), then publish it again",
        )
    return Check("gateway-key", True, text)


def check_team_keys(app: App, now: datetime) -> Check:
    allowed = app.config.policy.allowed_statuses
    with open_session(app.engine) as s:
        teams = [t for t in list_teams(s) if t.status in allowed]
        keys = {t.handle: keys_of_team(s, t.id or 0) for t in teams}
    lacking = [
        f"{handle} ({why})" for handle, bound in keys.items() if (why := _no_key(app, bound, now))
    ]
    if not lacking:
        text = f"every team that may submit ({len(teams)}) has a usable key"
        return Check("team-keys", True, text)
    many = len(lacking) > 1
    return Check(
        "team-keys",
        False,
        f"{len(lacking)} team{'s' if many else ''} may submit but {'have' if many else 'has'} "
        f"no usable key: {', '.join(lacking)}; import one with `keys import HANDLE FILE`",
    )


def _no_key(app: App, bound: list[TeamKey], now: datetime) -> str | None:
    """Why none of a team's keys is usable now; None if one is."""
    if not bound:
        return "no key bound"
    live = [k for k in bound if k.revoked_at is None]
    if not live:
        return "every bound key is revoked"
    assessed = [app.registry.assess_key(k.fingerprint, now) for k in live]
    if any(a is not None and a.usable for a in assessed):
        return None
    return next((a.problems[0] for a in assessed if a is not None and a.problems), "missing")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


# --- the sync from the Trusted Introducer directory --------------------------------

SHOWN = 5  # names in one line; the rest are counted


def check_directory(app: App, now: datetime) -> Check:
    days = app.config.registry.ti_max_age_days
    with open_session(app.engine) as s:
        linked = len(linked_teams(s))
        stale = ti_links_seen_before(s, now - timedelta(days=days))
    if not linked:
        return Check("ti-directory", True, "no team is linked to the TI directory")
    if not stale:
        return Check(
            "ti-directory", True, f"{linked} linked teams seen by a sync within {days} days"
        )
    names = [f"{h} ({f'seen {seen:%Y-%m-%d}' if seen else 'never synced'})" for h, seen in stale]
    return Check(
        "ti-directory",
        False,
        f"{len(stale)} of {linked} linked teams not seen by a sync for {days} days: "
        f"{_some(names)}; is clearinghouse-ti-sync.timer running (`teams sync --ti ... "
        "--apply`), and does TI still list them?",
    )


def check_directory_keys(app: App, now: datetime) -> Check:
    days = app.config.health.key_expiry_days
    with open_session(app.engine) as s:
        expiring = bound_keys_ti_expiring(s, (now + timedelta(days=days)).date())
    if not expiring:
        return Check("ti-keys", True, f"no bound key expires within {days} days by TI's dates")
    names = [f"{h} {fpr} on {expires:%Y-%m-%d}" for h, fpr, expires in expiring]
    return Check(
        "ti-keys",
        False,
        f"{len(expiring)} bound keys expire within {days} days by TI's dates: {_some(names)}; "
        "ask the team for its next key (`keys import`, or `teams sync --keys`)",
    )


def _some(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")
