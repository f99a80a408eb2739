"""How records look to an admin: rows for listings, printed as aligned text or JSON.

The JSON field names are a contract (docs/reference.md "Message states and reason codes"). Every
value is printed through `gateway.printable`: stored data is attacker-chosen, and its
control characters reach the admin's terminal escaped, in text and JSON alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import click
from sqlmodel import Session

from contract.reasons import explain
from gateway.printable import printable
from store.models import AuditEntry, Message, OutboxEntry, Team, TeamKey
from store.registry import get_team_by_id, keys_of_team, last_submission_at, ti_entry, ti_keys
from store.submission_rows import SubmissionRow, submissions_for_message

Row = dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit(rows: Row | Sequence[Row], as_json: bool, columns: Sequence[str] = ()) -> None:
    """Print one record (key: value lines) or a table of records, or JSON."""
    data = _plain(rows)
    if as_json:
        # json.dumps escapes C0 controls inside strings; its own line breaks are kept.
        click.echo(printable(json.dumps(data, indent=2, ensure_ascii=False), keep="\n"))
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            text = (
                json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
            )
            click.echo(printable(f"{key:<{width}}  {'' if text is None else text}"))
        return
    if not data:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in data]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    click.echo(printable(header.rstrip()))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # e.g. a key's user IDs: not Python's repr of a list
        return printable("; ".join(str(v) for v in value))
    return printable(str(value))


def message_row(
    s: Session, m: Message, *, detailed: bool = False, handles: dict[int, str] | None = None
) -> Row:
    """One message's row; `handles` (team id -> handle) saves a look-up a row in a list."""
    if handles is None:
        team = get_team_by_id(s, m.team_id) if m.team_id else None
        handle = team.handle if team else None
    else:
        handle = handles.get(m.team_id) if m.team_id else None
    row: Row = {
        "id": m.id,
        "state": m.state,
        "reason": m.reason,
        "team": handle,
        "received_at": m.received_at,
        "channel": m.channel,
    }
    if detailed:
        meaning, todo = explain(m.reason)
        row |= {
            "size": m.size,
            "envelope_from": m.envelope_from,
            "envelope_to": m.envelope_to,
            "processed_at": m.processed_at,
            "purged_at": m.purged_at,
            "signer_fingerprint": m.signer_fingerprint,
            "detail": m.detail,
            "explanation": meaning or None,
            "next_step": todo or None,
            "submissions": [sub.id for sub in submissions_for_message(s, m.id or 0)],
        }
    return row


def team_row(s: Session, t: Team, *, with_keys: bool = False) -> Row:
    keys = keys_of_team(s, t.id or 0)
    row: Row = {
        "handle": t.handle,
        "name": t.name,
        "email": t.email,
        "status": t.status,
        "country": t.country,
        "keys": len(keys),
        "ti": t.ti_name,
        "directory": _directory_fields(s, t),
    }
    if with_keys:
        row["keys"] = [_key_fields(k) for k in keys]
        row["last_submission_at"] = last_submission_at(s, t.id or 0)
        row["created_at"] = t.created_at
    return row


def _directory_fields(s: Session, t: Team) -> Row | None:
    """What the TI directory said of the team at the last `teams sync --apply` that saw it."""
    entry = ti_entry(s, t.id or 0) if t.ti_name else None
    if entry is None:
        return None
    return {
        "short_name": entry.short_name,
        "classification": entry.classification,
        "since": entry.since.isoformat() if entry.since else None,
        "fingerprints": [
            {"fingerprint": k.fingerprint, "expires": k.expires.isoformat() if k.expires else None}
            for k in ti_keys(s, t.id or 0)
        ],
        "seen_at": entry.seen_at,
    }


def _key_fields(k: TeamKey) -> Row:
    return {
        "fingerprint": k.fingerprint,
        "user_ids": k.user_ids.split("\n") if k.user_ids else [],
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "revoke_reason": k.revoke_reason,
    }


def key_row(s: Session, k: TeamKey) -> Row:
    team = get_team_by_id(s, k.team_id)
    return {"team": team.handle if team else None} | _key_fields(k)


def submission_row(r: SubmissionRow) -> Row:
    return {
        "id": r.id,
        "team": r.team,
        "type": r.type,
        "period": r.period,
        "revision": r.revision,
        "message_id": r.message_id,
        "supersedes_id": r.supersedes_id,
        "created_at": r.created_at,
        "values": dict(r.values),  # type 2: totals in the canonical vocabulary
        "counts": [c.as_json() for c in r.counts],  # type 2: each count as sent, counted as
    }


def outbox_row(e: OutboxEntry) -> Row:
    return {
        "id": e.id,
        "kind": e.kind,
        "recipient": e.recipient,
        "state": e.state,
        "attempts": e.attempts,
        "next_attempt_at": e.next_attempt_at,
        "last_error": e.last_error,
        "message_id": e.message_id,
        "created_at": e.created_at,
        "sent_at": e.sent_at,
    }


def audit_row(e: AuditEntry) -> Row:
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "details": e.details,
    }


def say(text: str, *, err: bool = False) -> None:
    """Print a line the CLI composed around stored data (a handle, an address, an error
    that quotes one): escaped like `emit`, keeping only the CLI's own line breaks."""
    click.echo(printable(text, keep="\n"), err=err)
