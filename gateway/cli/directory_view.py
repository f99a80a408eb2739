"""How a `teams sync` plan looks to an admin: tables for review, or one JSON document.

In: a `SyncResult` and what the command was given. Out: text on stdout. The JSON document
is a contract for scripts (schema 1; fields are only ever added):

    {"schema": 1, "source": str, "applied": bool,
     "options": {"apply", "suspend_missing", "update_contacts", "force": bool, "keys": str|null},
     "directory": {"teams": int}, "registry": {"teams": int, "linked": int},
     "guard": {"teams": int, "lowered": int, "trips": bool, "refuses": bool},
     "changes": [{"kind": "status"|"key"|"contact", "team", "ti", "from": str|null, "to",
                  "lowers": bool, "detail"}],
     "reports": [{"kind", "team", "ti", "fingerprint": str|null,
                  "expires": "YYYY-MM-DD"|null, "detail"}],
     "unregistered": [{"ti", "classification": "l"|"a"|"c", "country": str|null}],
     "keys": {"offered": int, "matched": int}}

`refuses` says whether `--apply` refuses (or refused) this plan; `applied` whether it was
carried out. Report kinds: missing, suspended-kept, key-not-listed, key-missing,
key-elsewhere, key-refused, contact-differs, contact-unusable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.cli.views import emit, say
from keys.directory_plan import Change, Plan, Report, SyncOptions
from keys.directory_sync import SyncResult

SCHEMA = 1
SHOWN_UNREGISTERED = 20


@dataclass(frozen=True)
class Asked:
    """What the command was given, for the document and the closing line."""

    source: str
    keys: str | None
    apply: bool
    options: SyncOptions
    directory_teams: int


def plan_document(result: SyncResult, asked: Asked) -> dict[str, Any]:
    plan, opts = result.plan, asked.options
    guard = plan.guard
    return {
        "schema": SCHEMA,
        "source": asked.source,
        "applied": result.applied,
        "options": {
            "apply": asked.apply,
            "suspend_missing": opts.suspend_missing,
            "update_contacts": opts.update_contacts,
            "force": opts.force,
            "keys": asked.keys,
        },
        "directory": {"teams": asked.directory_teams},
        "registry": {"teams": guard.teams, "linked": plan.linked},
        "guard": {
            "teams": guard.teams,
            "lowered": guard.lowered,
            "trips": guard.trips,
            "refuses": guard.refuses,
        },
        "changes": [_change(c) for c in plan.changes],
        "reports": [_report(r) for r in plan.reports],
        "unregistered": [
            {"ti": e.short_name, "classification": e.classification, "country": e.country}
            for e in plan.unregistered
        ],
        "keys": {"offered": plan.keys_offered, "matched": plan.keys_matched},
    }


def _change(c: Change) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "team": c.team,
        "ti": c.ti,
        "from": c.before,
        "to": c.after,
        "lowers": c.lowers,
        "detail": c.detail,
    }


def _report(r: Report) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "team": r.team,
        "ti": r.ti,
        "fingerprint": r.fingerprint,
        "expires": r.expires.isoformat() if r.expires else None,
        "detail": r.detail,
    }


def print_plan(result: SyncResult, asked: Asked, as_json: bool) -> None:
    document = plan_document(result, asked)
    if as_json:
        say(json.dumps(document, indent=2, ensure_ascii=False))
        return
    plan = result.plan
    say(
        f"TI directory {asked.source}: {asked.directory_teams} teams; registry: "
        f"{plan.guard.teams} teams, {plan.linked} linked to the directory"
    )
    say("\nChanges:")
    emit(document["changes"], False, ["kind", "team", "ti", "from", "to", "detail"])
    say("\nReports (nothing is changed for these):")
    emit(document["reports"], False, ["kind", "team", "ti", "fingerprint", "expires", "detail"])
    _print_unregistered(plan)
    if asked.keys is not None:
        say(
            f"\nKeys in {asked.keys}: {plan.keys_offered}, of which {plan.keys_matched} "
            "are listed for a linked team"
        )
    say("\n" + closing_line(result, asked))


def _print_unregistered(plan: Plan) -> None:
    names = [e.short_name for e in plan.unregistered]
    if not names:
        return
    say(
        f"\nIn the directory, not in the registry ({len(names)}; never added: register a "
        "team with `teams add HANDLE ... --ti NAME`):"
    )
    shown = ", ".join(names[:SHOWN_UNREGISTERED])
    more = len(names) - SHOWN_UNREGISTERED
    say(f"  {shown}" + (f", and {more} more (--json lists all)" if more > 0 else ""))


def closing_line(result: SyncResult, asked: Asked) -> str:
    plan, count = result.plan, len(result.plan.changes)
    changes = f"{count} change{'s' if count != 1 else ''}"
    if result.applied:
        return f"Applied: {changes}, each in `clearinghouse audit`."
    if plan.guard.refuses:
        return ("REFUSED, nothing changed: " if asked.apply else "--apply refuses this: ") + (
            guard_refusal(plan)
        )
    if not count:
        return "Nothing to change."
    return f"Plan only, nothing changed: --apply makes {changes}."


def guard_refusal(plan: Plan) -> str:
    guard = plan.guard
    return (
        f"the sync lowers the status of {guard.lowered} of {guard.teams} teams, more than "
        "a quarter; is the directory file complete? If these changes are right, "
        "rerun with --apply --force"
    )
