"""What `teams sync` would do: the registry as it is, plus the TI directory, gives a plan.

Pure: no store, no GnuPG, no clock. In: a `RegistrySnapshot`, a `Directory`, the primary
fingerprints of the keys `--keys` offers, and the `SyncOptions`. Out: a `Plan`: the
changes (a team's status, key or contact address), the reports (what an admin should look
at, which the sync changes nothing about), the directory teams not in the registry, and
the verdict of the quarter-of-teams guard. The rules are docs/reference.md's "Trusted Introducer
directory":

- a linked team's status follows its classification (l/a/c -> listed/accredited/
  certified), except that a suspended team stays suspended: a sync lifts no suspension;
- a linked team missing from the directory is reported, and suspended only with
  `suspend_missing`;
- a plan that lowers the status of more than a quarter of the registry's teams is refused
  without `force`: a truncated file must not lock everyone out;
- an offered key is bound only to the team whose directory entry lists its full primary
  fingerprint (whether `keys import` accepts it is decided when it is applied);
- a bound key the directory does not list, and a listed fingerprint with no key in the
  registry, are reported, with the directory's expiry date;
- the contact address changes only with `update_contacts`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from contract.errors import RegistryError
from keys.directory import Directory, DirectoryEntry, link_key
from keys.registry import check_address

RANK: Mapping[str, int] = {"suspended": 0, "listed": 1, "accredited": 2, "certified": 3}
ChangeKind = Literal["status", "key", "contact"]
ReportKind = Literal[
    "missing",
    "suspended-kept",
    "key-not-listed",
    "key-missing",
    "key-elsewhere",
    "key-refused",
    "contact-differs",
    "contact-unusable",
]


@dataclass(frozen=True)
class SnapshotKey:
    fingerprint: str
    revoked: bool
    ti_expires: date | None  # the directory's expiry as the last sync recorded it


@dataclass(frozen=True)
class SnapshotTeam:
    handle: str
    status: str
    email: str
    ti_name: str | None
    keys: tuple[SnapshotKey, ...] = ()


@dataclass(frozen=True)
class RegistrySnapshot:
    teams: tuple[SnapshotTeam, ...]
    bound: Mapping[str, str]  # fingerprint of every bound key -> its team's handle


@dataclass(frozen=True)
class SyncOptions:
    suspend_missing: bool = False
    update_contacts: bool = False
    force: bool = False


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    team: str
    ti: str
    before: str | None
    after: str
    detail: str
    lowers: bool = False


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    team: str
    ti: str
    detail: str
    fingerprint: str | None = None
    expires: date | None = None


@dataclass(frozen=True)
class Guard:
    teams: int  # in the registry
    lowered: int  # whose status the plan lowers
    forced: bool

    @property
    def trips(self) -> bool:
        return self.lowered * 4 > self.teams

    @property
    def refuses(self) -> bool:
        return self.trips and not self.forced


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    reports: tuple[Report, ...]
    unregistered: tuple[DirectoryEntry, ...]
    guard: Guard
    linked: int
    keys_offered: int
    keys_matched: int


def plan_sync(
    registry: RegistrySnapshot,
    directory: Directory,
    offered: frozenset[str],
    options: SyncOptions,
) -> Plan:
    changes: list[Change] = []
    reports: list[Report] = []
    linked = [t for t in registry.teams if t.ti_name]
    listed: set[str] = set()
    for team in linked:
        entry = directory.find(team.ti_name or "")
        found = _missing(team, options) if entry is None else _present(team, entry, options)
        if entry is not None:
            found = itertools.chain(found, _keys(team, entry, registry.bound, offered))
            listed |= entry.fingerprints
        for item in found:
            if isinstance(item, Change):
                changes.append(item)
            else:
                reports.append(item)
    names = {link_key(t.ti_name or "") for t in linked}
    lowered = sum(1 for c in changes if c.lowers)
    return Plan(
        changes=tuple(changes),
        reports=tuple(reports),
        unregistered=tuple(e for e in directory.entries if link_key(e.short_name) not in names),
        guard=Guard(len(registry.teams), lowered, options.force),
        linked=len(linked),
        keys_offered=len(offered),
        keys_matched=len(offered & listed),
    )


def _missing(team: SnapshotTeam, options: SyncOptions) -> Iterator[Change | Report]:
    ti = team.ti_name or ""
    if options.suspend_missing and team.status != "suspended":
        yield Change(
            "status", team.handle, ti, team.status, "suspended", "missing from the directory", True
        )
    todo = "" if options.suspend_missing else "; --suspend-missing suspends it"
    yield Report("missing", team.handle, ti, f"no entry {ti!r} in the directory{todo}")


def _present(
    team: SnapshotTeam, entry: DirectoryEntry, options: SyncOptions
) -> Iterator[Change | Report]:
    ti, why = entry.short_name, _classified(entry)
    if team.status == "suspended":
        yield Report(
            "suspended-kept",
            team.handle,
            ti,
            f"suspended here, {why}; a sync lifts no suspension: "
            f"`teams set-status {team.handle} {entry.status}` does",
        )
    elif team.status != entry.status:
        lowers = RANK[entry.status] < RANK.get(team.status, 0)
        yield Change("status", team.handle, ti, team.status, entry.status, why, lowers)
    yield from _contact(team, entry, options)


def _classified(entry: DirectoryEntry) -> str:
    since = f" since {entry.since:%Y-%m-%d}" if entry.since else ""
    label = entry.classification_name or entry.status
    return f"TI classification {entry.classification} ({label}){since}"


def _contact(
    team: SnapshotTeam, entry: DirectoryEntry, options: SyncOptions
) -> Iterator[Change | Report]:
    address = entry.contact
    if address is None or address.lower() == team.email.lower():
        return
    try:
        usable = check_address(address)
    except RegistryError:
        yield Report(
            "contact-unusable", team.handle, entry.short_name, f"{address!r} is not usable"
        )
        return
    if options.update_contacts:
        yield Change("contact", team.handle, entry.short_name, team.email, usable, "TI contact")
    else:
        detail = f"TI says {usable}; --update-contacts changes it"
        yield Report("contact-differs", team.handle, entry.short_name, detail)


def _keys(
    team: SnapshotTeam, entry: DirectoryEntry, bound: Mapping[str, str], offered: frozenset[str]
) -> Iterator[Change | Report]:
    ti = entry.short_name
    for key in entry.keys:
        fpr, expiry = key.fingerprint, _expiry(key.expires)
        owner = bound.get(fpr)
        if owner == team.handle:
            continue
        if owner is not None:
            detail = f"listed by TI ({expiry}) but bound to team {owner!r}"
            yield Report("key-elsewhere", team.handle, ti, detail, fpr, key.expires)
        elif fpr in offered:
            yield Change("key", team.handle, ti, None, fpr, f"listed by TI, {expiry}")
        else:
            detail = f"listed by TI ({expiry}), no such key here: import it or give --keys"
            yield Report("key-missing", team.handle, ti, detail, fpr, key.expires)
    for own in team.keys:
        if not own.revoked and own.fingerprint not in entry.fingerprints:
            was = f"; listed before, {_expiry(own.ti_expires)}" if own.ti_expires else ""
            detail = f"bound here, not listed by TI{was}"
            yield Report("key-not-listed", team.handle, ti, detail, own.fingerprint, own.ti_expires)


def _expiry(expires: date | None) -> str:
    return f"expires {expires:%Y-%m-%d}" if expires else "no expiry given"
