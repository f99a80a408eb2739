"""Binding keys to teams and taking them away again: `keys import` and `keys remove`.

In: the `Registry` (its store, its gateway keyring, its audit actor), a team handle
and a key file, or a fingerprint. Out: rows in the store and keys in the keyring,
changed together, each change one audit entry; or a `RegistryError` that says why
nothing changed and what to do. The rules, beside those of `keys/keycheck.py`:

- a key not bound yet is bound only if usable now (verify and encrypt);
- a key bound to this team is refreshed whatever it says (the keyring must learn a
  revocation or a new expiry), unless the registry revoked it: that stays;
- the gateway's own key, a coordinator's key, and another team's key are never bound;
- no key packet is in the keyring twice (key planting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from contract.errors import GnuPGError, RegistryError
from keys.key_details import KeyDetails
from keys.keycheck import Usability, assess, holders, read_keys, shared_packet
from store import registry as q
from store.db import transaction
from store.models import Team, TeamKey

if TYPE_CHECKING:
    from keys.registry import Registry


@dataclass(frozen=True)
class ImportedKey:
    fingerprint: str
    user_ids: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool
    updated: bool  # already bound to this team: refreshed, not added
    usability: Usability | None = field(default=None, compare=False)  # as imported


def import_keys(
    registry: Registry, handle: str, data: bytes, *, action: str = "keys import"
) -> list[ImportedKey]:
    """Bind every public key in `data` to team `handle` (all or nothing)."""
    keys = read_keys(registry.gpg, data)
    _no_packet_shared_within(keys)
    now = datetime.now(UTC)
    with transaction(registry.engine) as s:
        team = registry.team(s, handle)
        held = holders(registry.gpg.public_keys())
        gateway = registry.gateway_fingerprint()
        for key in keys:
            _check_bindable(s, team, key, held, gateway, now)
        registry.gpg.import_keys(data)
        imported = [_bind(registry, s, team, key.fingerprint, now) for key in keys]
        for done in imported:
            verb = "refreshed" if done.updated else "bound"
            uids = "; ".join(done.user_ids)
            registry.audit(s, action, done.fingerprint, f"{verb} to {handle}: {uids}")
        return imported


def _no_packet_shared_within(keys: list[KeyDetails]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        if (shared := shared_packet(key, seen)) is not None:
            raise RegistryError(
                f"keys {key.fingerprint} and {shared[1]} in the file share the key packet "
                f"{shared[0]}: a key packet belongs to one key only; nothing was imported"
            )
        seen |= holders([key])


def _check_bindable(
    s: Session,
    team: Team,
    key: KeyDetails,
    held: dict[str, str],
    gateway: str | None,
    now: datetime,
) -> None:
    fpr = key.fingerprint
    check_not_taken(s, key, held, gateway, "a team")
    bound = q.get_key(s, fpr)
    if bound is not None and bound.team_id != team.id:
        other = q.get_team_by_id(s, bound.team_id)
        raise RegistryError(
            f"key {fpr} is bound to team {other.handle if other else '?'!r}; "
            "a key can belong to one team only"
        )
    if bound is not None and bound.revoked_at is not None:
        why = f": {bound.revoke_reason}" if bound.revoke_reason else ""
        raise RegistryError(
            f"key {fpr} stays revoked in the registry (revoked {bound.revoked_at:%Y-%m-%d %H:%M}"
            f" UTC{why}); a revoked key is never bound again: the team needs a new key (then "
            f"`keys import {team.handle} NEWKEY`); nothing was imported"
        )
    usability = assess(key, now)
    if bound is None and not usability.usable:
        raise RegistryError(
            f"key {fpr} cannot be bound to {team.handle}: {'; '.join(usability.problems)}. "
            "The gateway verifies a team's signatures and encrypts its replies with the "
            "same key; nothing was imported"
        )


def check_not_taken(
    s: Session, key: KeyDetails, held: dict[str, str], gateway: str | None, who: str
) -> None:
    """Refuse a key that is the gateway's, a coordinator's (for `who`, a team), or that
    shares a key packet with another key in the keyring."""
    fpr = key.fingerprint
    if fpr == gateway:
        raise RegistryError(f"key {fpr} is the gateway's own key; {who} needs its own key")
    coordinator = q.coordinator_for_fingerprint(s, fpr)
    if coordinator is not None and who == "a team":
        raise RegistryError(
            f"key {fpr} is coordinator {coordinator.email}'s; a team needs its own key"
        )
    if (shared := shared_packet(key, held)) is not None:
        part = "its primary key" if shared[0] == fpr else f"its subkey {shared[0]}"
        other = shared[1]
        raise RegistryError(
            f"key {fpr} cannot be imported: {part} is already in the gateway keyring as "
            f"part of key {other} ({_whose(s, other, gateway)}); a key packet belongs to one "
            "key only, and a key that carries another's is planted. Check which of the two "
            f"the rightful owner gave you; `keys remove {other}` removes the other one. "
            "Nothing was imported"
        )


def _whose(s: Session, fingerprint: str, gateway: str | None) -> str:
    if fingerprint == gateway:
        return "the gateway's own key"
    coordinator = q.coordinator_for_fingerprint(s, fingerprint)
    if coordinator is not None:
        return f"coordinator {coordinator.email}'s key"
    bound = q.team_for_fingerprint(s, fingerprint)
    return f"bound to team {bound.handle!r}" if bound else "bound to no team"


def _bind(registry: Registry, s: Session, team: Team, fpr: str, now: datetime) -> ImportedKey:
    details = registry.gpg.details(fpr)
    if details is None:
        raise RegistryError(f"GnuPG did not import key {fpr}; is it a valid public key?")
    existing = q.get_key(s, fpr)
    row = existing or TeamKey(fingerprint=fpr, team_id=team.id or 0)
    row.user_ids = "\n".join(details.user_ids)
    row.created_at = details.created
    row.expires_at = details.expires
    if details.revoked and row.revoked_at is None:
        row.revoked_at, row.revoke_reason = now, "revoked by its owner"
    if existing is None:
        q.add_key(s, row)
    else:
        s.add(row)
    usability = assess(details, now)
    return ImportedKey(
        fpr, details.user_ids, details.expires, details.revoked, existing is not None, usability
    )


# --- taking keys away -------------------------------------------------------------------


@dataclass(frozen=True)
class RemovedKey:
    fingerprint: str
    team: str | None  # the handle it was bound to; None for a key bound to no team
    in_keyring: bool  # it was in the gateway keyring (and is not any more)


def remove_key(registry: Registry, fingerprint: str) -> RemovedKey:
    """Remove a key from the registry and the gateway keyring, audited.

    Never the gateway's own key, nor a coordinator's (`coordinators remove`); a subkey
    fingerprint is refused with the primary it belongs to, since gpg would otherwise
    delete whichever key holds it.
    """
    fpr = q.normalize_fingerprint(fingerprint)
    if fpr == registry.gateway_fingerprint():
        raise RegistryError(f"key {fpr} is the gateway's own key; `keys remove` never deletes it")
    with transaction(registry.engine) as s:
        coordinator = q.coordinator_for_fingerprint(s, fpr)
        if coordinator is not None:
            raise RegistryError(
                f"key {fpr} is coordinator {coordinator.email}'s: "
                f"`coordinators remove {coordinator.email}`"
            )
        row = q.get_key(s, fpr)
        held = holders(registry.gpg.public_keys())
        if held.get(fpr, fpr) != fpr:
            raise RegistryError(
                f"{fpr} is a subkey of key {held[fpr]}; give the primary fingerprint "
                f"(`keys remove {held[fpr]}`)"
            )
        if row is None and fpr not in held:
            raise RegistryError(f"no key {fpr} in the registry or the gateway keyring")
        team = q.get_team_by_id(s, row.team_id) if row is not None else None
        if row is not None:
            q.remove_key(s, fpr)
        where = f"from team {team.handle}" if team else "bound to no team"
        registry.audit(s, "keys remove", fpr, f"{where}; keyring: {fpr in held}")
        if fpr in held:
            delete_from_keyring(registry, fpr)
        return RemovedKey(fpr, team.handle if team else None, fpr in held)


def delete_from_keyring(registry: Registry, fingerprint: str) -> None:
    """Delete one public key; raises (rolling the caller's transaction back) if it stays."""
    registry.gpg.delete_public(fingerprint)
    if registry.gpg.details(fingerprint) is not None:
        raise GnuPGError(f"GnuPG did not delete key {fingerprint} from the gateway keyring")
