"""`teams sync`: the registry brought in line with the TI directory, or the plan for it.

In: the `Registry` (store, gateway keyring, actor), a checked `Directory`, the keys
`--keys` offers (`OfferedKeys`), the `SyncOptions`, and the time. Out: a `SyncResult`:
the plan made from the registry as it is and, when applied, what was done. Applying:

1. in one transaction, the plan is made again from the registry as it is then; if the
   quarter-of-teams guard refuses it, nothing is written. Otherwise each status and
   contact change is made with one audit entry (`teams sync`), and what the directory
   says of each linked team it lists is recorded (`tientry`, `tikey`: classification,
   since, fingerprints with expiry, when seen), which is bookkeeping, not a change;
2. then each key is bound through `Registry.import_keys`, the path of `keys import`, so
   every rule that command enforces applies here too (one audit entry per key, action
   `teams sync`); a key it refuses becomes a `key-refused` report.

The offered keyring is opened in a scratch GnuPG home, never the gateway's: only keys
that get bound reach the gateway keyring, one at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from contract.errors import DirectoryError, RegistryError
from keys.directory import Directory
from keys.directory_plan import (
    Change,
    Plan,
    RegistrySnapshot,
    Report,
    SnapshotKey,
    SnapshotTeam,
    SyncOptions,
    plan_sync,
)
from keys.gpg import GnuPG
from keys.registry import Registry
from store import audit
from store import registry as q
from store.db import open_session, transaction
from store.models import TiEntry


class OfferedKeys:
    """The public keys of a `--keys` file, in a scratch keyring of their own."""

    def __init__(self, gpg: GnuPG | None = None, fingerprints: frozenset[str] = frozenset()):
        self._gpg = gpg
        self.fingerprints = fingerprints  # primary key fingerprints

    @classmethod
    @contextmanager
    def open(cls, data: bytes | None, source: str = "--keys") -> Iterator[OfferedKeys]:
        if data is None:
            yield cls()
            return
        with tempfile.TemporaryDirectory(prefix="clearinghouse-ti-keys-") as scratch:
            gpg = GnuPG(Path(scratch) / "gnupg")
            if gpg.contains_secret(data):
                raise DirectoryError(
                    f"{source} holds a SECRET key: give the teams' public keys only"
                )
            fingerprints = frozenset(gpg.import_keys(data))
            if not fingerprints:
                raise DirectoryError(f"{source} holds no OpenPGP public key GnuPG can read")
            yield cls(gpg, fingerprints)

    def export(self, fingerprint: str) -> bytes:
        """The one key, armored, as `keys import` would be given it."""
        if self._gpg is None or fingerprint not in self.fingerprints:
            raise DirectoryError(f"key {fingerprint} was not offered")  # a bug in the plan
        return self._gpg.export_public(fingerprint).encode()


@dataclass(frozen=True)
class SyncResult:
    plan: Plan  # when applied: the changes made, and keys refused among the reports
    applied: bool


def plan(registry: Registry, directory: Directory, keys: OfferedKeys, opts: SyncOptions) -> Plan:
    """The plan only: nothing is written."""
    with open_session(registry.engine) as s:
        return plan_sync(snapshot(s), directory, keys.fingerprints, opts)


def apply(
    registry: Registry,
    directory: Directory,
    keys: OfferedKeys,
    opts: SyncOptions,
    now: datetime,
) -> SyncResult:
    """Carry the plan out (see the module docstring); not applied if the guard refuses."""
    with transaction(registry.engine) as s:
        made = plan_sync(snapshot(s), directory, keys.fingerprints, opts)
        if made.guard.refuses:
            return SyncResult(made, applied=False)
        for change in made.changes:
            if change.kind != "key":
                _change(s, registry.actor, change)
        _record(s, directory, now)
    done = [c for c in made.changes if c.kind != "key"]
    refused: list[Report] = []
    for change in (c for c in made.changes if c.kind == "key"):
        armored = keys.export(change.after)
        try:
            registry.import_keys(change.team, armored, action="teams sync")
            done.append(change)
        except RegistryError as exc:
            detail = f"not bound: {exc}"
            refused.append(Report("key-refused", change.team, change.ti, detail, change.after))
    applied = replace(made, changes=tuple(done), reports=made.reports + tuple(refused))
    return SyncResult(applied, applied=True)


def snapshot(s: Session) -> RegistrySnapshot:
    """The registry as the plan sees it."""
    keys_by_team: dict[int, list[SnapshotKey]] = {}
    bound: dict[str, str] = {}
    handles = q.team_handles(s)
    expiries = {
        (k.team_id, k.fingerprint): k.expires
        for team in q.linked_teams(s)
        for k in q.ti_keys(s, team.id or 0)
    }
    for key in q.list_keys(s):
        bound[key.fingerprint] = handles[key.team_id]
        known = expiries.get((key.team_id, key.fingerprint))
        own = SnapshotKey(key.fingerprint, key.revoked_at is not None, known)
        keys_by_team.setdefault(key.team_id, []).append(own)
    teams = tuple(
        SnapshotTeam(t.handle, t.status, t.email, t.ti_name, tuple(keys_by_team.get(t.id or 0, ())))
        for t in q.list_teams(s)
    )
    return RegistrySnapshot(teams, bound)


def _change(s: Session, actor: str, change: Change) -> None:
    team = q.get_team(s, change.team)
    if team is None:  # the plan was made in this transaction: it cannot vanish
        raise DirectoryError(f"team {change.team!r} disappeared during the sync")
    if change.kind == "status":
        team.status = change.after
        s.add(team)
        s.flush()
    else:
        q.set_team_email(s, team, change.after)
    what = f"{change.kind} {change.before} -> {change.after}: {change.detail}"
    audit.record(s, actor, "teams sync", change.team, f"{what} (TI {change.ti!r})")


def _record(s: Session, directory: Directory, now: datetime) -> None:
    for team in q.linked_teams(s):
        entry = directory.find(team.ti_name or "")
        if entry is None:
            continue  # its record keeps the time it was last seen: `health` tells
        row = TiEntry(
            team_id=team.id or 0,
            short_name=entry.short_name,
            classification=entry.classification,
            since=entry.since,
            seen_at=now,
        )
        listed = {k.fingerprint: k.expires for k in entry.keys}  # TI may list one twice
        q.save_ti_entry(s, row, list(listed.items()))
