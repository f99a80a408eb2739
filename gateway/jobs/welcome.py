"""The onboarding mail: everything a newly registered team needs to start sending.

In: the App and a team handle. Out: one mail of kind `welcome` in the outbox, to the
team's registered address, signed by the gateway key and encrypted to the team's key,
with the gateway key attached; and an audit entry. The body (reports/templates/
welcome.txt.j2) gives the intake address, the gateway key's fingerprint, what the
team's status allows, the freshness and sender rules, blank type 1 and type 2 reports,
and how to send.

It is sent once per team (its outbox dedupe key); `teams welcome HANDLE --resend`
sends it again, and `keys import` sends it when a team's first usable key is bound and
`[registry] welcome_on_first_key` is on (`welcome_if_first_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from contract.codes import MailKind
from contract.errors import RegistryError
from gateway.app import App
from gateway.reply import seal_from_gateway
from keys.registry import no_usable_key
from keys.wrap import Attachment
from parsers.template import blank_report
from reports.mail import WELCOME, write
from reports.periods import previous_period
from store import outbox
from store.db import open_session, transaction
from store.models import Team
from store.registry import keys_of_team


@dataclass(frozen=True)
class Welcome:
    handle: str
    email: str
    entry_id: int | None  # the outbox entry; None: sent before, and not resent
    key_fingerprint: str | None  # the team key it was encrypted to


def send_welcome(app: App, handle: str, *, resend: bool = False) -> Welcome:
    """Queue the welcome for team `handle`, unless it was queued before and not `resend`."""
    with transaction(app.engine) as s:
        team = app.registry.team(s, handle)
        first = _dedupe_key(team)
        sent_before = outbox.already_queued(s, first)
        if sent_before and not resend:
            return Welcome(handle, team.email, None, None)
        key = app.registry.encryption_key(s, team)
        if key is None:
            raise RegistryError(f"no welcome sent: {no_usable_key(handle)}")
        subject, body = write(WELCOME, **_context(app, s, team))
        attachment = Attachment(_key_file(app), "application/pgp-keys", _gateway_key(app))
        raw = seal_from_gateway(app, team.email, key, subject, body, [attachment])
        dedupe = f"{first}:resent:{app.clock():%Y%m%dT%H%M%S.%f}" if sent_before else first
        entry = outbox.enqueue(
            s, kind=MailKind.WELCOME, recipient=team.email, raw=raw, dedupe_key=dedupe
        )
        again = " (sent again)" if sent_before else ""
        app.registry.audit(s, "teams welcome", handle, f"to {team.email}, key {key}{again}")
        return Welcome(handle, team.email, entry.id if entry else None, key)


def welcome_if_first_key(app: App, handle: str, had_usable_key: bool) -> Welcome | None:
    """After `keys import`: the welcome, if this import gave the team its first usable key
    and `[registry] welcome_on_first_key` is on; None otherwise."""
    if had_usable_key or not app.config.registry.welcome_on_first_key:
        return None
    if not has_usable_key(app, handle):
        return None
    return send_welcome(app, handle)


def has_usable_key(app: App, handle: str) -> bool:
    """Whether the team has a key the gateway can both verify and encrypt to now."""
    with open_session(app.engine) as s:
        team = app.registry.team(s, handle)
        keys = [k for k in keys_of_team(s, team.id or 0) if k.revoked_at is None]
    assessed = [app.registry.assess_key(k.fingerprint) for k in keys]
    return any(a is not None and a.usable for a in assessed)


def _dedupe_key(team: Team) -> str:
    # The team's creation time too: a handle removed and registered again is a new team.
    return f"welcome:{team.handle}:{team.created_at:%Y%m%dT%H%M%S.%f}"


def _context(app: App, s: Session, team: Team) -> dict[str, Any]:
    core, policy = app.config.clearinghouse, app.config.policy
    gateway = app.identity.fingerprint
    period = previous_period(app.clock().date())
    return {
        "team": team,
        "team_key": app.registry.encryption_key(s, team),
        "clearinghouse": core.name,
        "gateway_address": core.gateway_address,
        "intake_addresses": list(core.intake_addresses),
        "gateway_fingerprint": gateway,
        "gateway_fingerprint_grouped": " ".join(re.findall(".{1,4}", gateway)),
        "key_file": _key_file(app),
        "may_submit": team.status in policy.allowed_statuses,
        "allowed_statuses": list(policy.allowed_statuses),
        "max_signature_age_days": policy.max_signature_age_days,
        "sender_rule": _sender_rule(policy.sender_binding, team.email),
        "type1": blank_report("type1", app.taxonomy, period),
        "type2": blank_report("type2", app.taxonomy, period),
    }


def _sender_rule(binding: str, email: str) -> str:
    if binding == "address":
        return f"sent from {email} (the From address is checked)"
    if binding == "domain":
        domain = email.rpartition("@")[2]
        return f"sent from an address at {domain} (the From domain is checked)"
    return "sent from any address (the From address is not checked)"


def _key_file(app: App) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", app.config.clearinghouse.name.lower()).strip("-")
    return f"{slug or 'clearinghouse'}-key.asc"


def _gateway_key(app: App) -> bytes:
    return app.gpg.export_public(app.identity.fingerprint).encode("ascii")
