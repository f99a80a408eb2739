"""`teams show HANDLE`: one team as an admin reads it, and as `--json` gives it.

In: the App, a session and a team. Out: a record (for `--json`: the team's fields, and
for each key its user IDs, the primary's and every subkey's capabilities and expiry,
whether the gateway can use it now and why not) and its text form, printed line by line:
a key whose signing or encryption subkey expires shows that date, never "no expiry".
Text taken from the registry or a key is printed with control characters escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from gateway.app import App
from gateway.cli.views import Row, say, team_row
from keys.key_details import KeyDetails, SubkeyDetails
from keys.keycheck import assess
from store.models import Team, TeamKey
from store.registry import keys_of_team

_CAPABILITIES = {"c": "certify", "s": "sign", "e": "encrypt", "a": "authenticate"}


def team_details(app: App, s: Session, team: Team) -> Row:
    """`team_row` with keys in full, and whether the team's status may submit."""
    row = team_row(s, team, with_keys=True)
    row["may_submit"] = team.status in app.config.policy.allowed_statuses
    now = datetime.now(UTC)
    row["keys"] = [_key(app, k, now) for k in keys_of_team(s, team.id or 0)]
    return row


def _key(app: App, k: TeamKey, now: datetime) -> Row:
    details = app.gpg.details(k.fingerprint)
    row: Row = {
        "fingerprint": k.fingerprint,
        "user_ids": k.user_ids.split("\n") if k.user_ids else [],
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "revoke_reason": k.revoke_reason,
        "bound_at": k.bound_at,
    }
    if details is None:
        return row | {"usable": False, "problems": ["missing from the gateway keyring"]}
    usability = assess(details, now)
    problems = list(usability.problems)
    if k.revoked_at is not None:
        problems.insert(0, "revoked in the registry")
    return row | {
        "usable": usability.usable and k.revoked_at is None,
        "can_sign": usability.can_sign,
        "can_encrypt": usability.can_encrypt,
        "usable_until": usability.until,
        "problems": problems,
        "capabilities": _words(details),
        "subkeys": [_subkey(sub) for sub in details.subkeys],
    }


def _subkey(sub: SubkeyDetails) -> Row:
    return {
        "fingerprint": sub.fingerprint,
        "capabilities": _words(sub),
        "created_at": sub.created,
        "expires_at": sub.expires,
        "revoked": sub.revoked,
    }


def _words(part: KeyDetails | SubkeyDetails) -> list[str]:
    return [_CAPABILITIES[c] for c in part.capabilities if c in _CAPABILITIES]


def print_team(row: Row) -> None:
    may = "may submit" if row["may_submit"] else "may not submit"
    usable = sum(1 for k in row["keys"] if k.get("usable"))
    lines = [
        ("team", f"{row['handle']} ({row['name']})"),
        ("email", row["email"]),
        ("status", f"{row['status']} ({may})"),
        ("country", row["country"] or "-"),
        ("registered", _date(row["created_at"])),
        (
            "last submission",
            _date(row["last_submission_at"]) if row["last_submission_at"] else "none",
        ),
        ("keys", f"{len(row['keys'])} ({usable} usable)"),
    ]
    for label, value in lines:
        say(f"{label:<16} {value}")
    for key in row["keys"]:
        say("")
        _print_key(key)


def _print_key(key: Row) -> None:
    until = key.get("usable_until")
    usable = f"usable until {_date(until)}" if until else "usable; nothing in it expires"
    state = usable if key.get("usable") else "NOT usable: " + "; ".join(key["problems"])
    if key["revoked_at"] is not None:
        why = f": {key['revoke_reason']}" if key["revoke_reason"] else ""
        state = f"REVOKED {_date(key['revoked_at'])}{why}"
    say(f"key {key['fingerprint']}  {state}")
    for uid in key["user_ids"]:
        say(f"  user ID   {uid}")
    caps = key.get("capabilities", [])
    say(f"  primary   {_part(caps, key['created_at'], key['expires_at'], False)}")
    for sub in key.get("subkeys", []):
        part = _part(sub["capabilities"], sub["created_at"], sub["expires_at"], sub["revoked"])
        say(f"  subkey    {sub['fingerprint']}  {part}")


def _part(caps: Sequence[str], created: Any, expires: Any, revoked: bool) -> str:
    ends = f"expires {_date(expires)}" if expires else "does not expire"
    if expires is not None and expires <= datetime.now(UTC):
        ends = f"EXPIRED {_date(expires)}"
    text = f"{'+'.join(caps) or '-'}, created {_date(created)}, {ends}"
    return text + (", REVOKED" if revoked else "")


def _date(value: datetime | None) -> str:
    return "never" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"
