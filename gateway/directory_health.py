"""`health` checks of the registry's sync from the Trusted Introducer directory.

In: the `App` (its store, `[registry] ti_max_age_days`, `[health] key_expiry_days`) and
the time. Out: two `Check`s:

- ti-directory: a team linked to the directory has not been found by a `teams sync
  --apply` for longer than `ti_max_age_days` (the sync timer stopped, or TI dropped the
  team): its status and keys may no longer be TI's;
- ti-keys: a bound, unrevoked key expires within `key_expiry_days` by the date the
  directory gives for it: the team will soon be unable to submit with it.

Both pass, saying so, when no team is linked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.app import App
from gateway.health import Check
from store.db import open_session
from store.registry import bound_keys_ti_expiring, linked_teams, ti_links_seen_before

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
