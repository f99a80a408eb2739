"""Queries on the trust registry: teams, their pinned keys, coordinators.

In: handles, fingerprints, addresses. Out: `Team`, `TeamKey` and `Coordinator` rows.
Plain reads and writes in the caller's session, never committed here; which team may
submit, and whether a key may be bound or is still usable, is decided by
`keys/registry.py`. Fingerprints are compared as upper-case hex without spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from store.models import Coordinator, Message, Submission, Team, TeamKey, TiEntry, TiKey, table_of

# Run for every message, so built once: a statement object caches its own compiled form.
_KEYS_OF_TEAM = (
    select(TeamKey)
    .where(TeamKey.team_id == bindparam("team_id"))
    .order_by(col(TeamKey.bound_at), col(TeamKey.fingerprint))
)
# Plain columns: no ORM objects are built for what every message reads (two ORM rows
# cost more Python than the database takes to find them).
_TEAMS, _KEYS = table_of(Team), table_of(TeamKey)
BOUND_KEY = (  # BoundKey's columns, for a `fingerprint`
    core_select(
        _TEAMS.c.id,
        _TEAMS.c.handle,
        _TEAMS.c.status,
        _TEAMS.c.email,
        _KEYS.c.fingerprint,
        _KEYS.c.revoked_at,
    )
    .select_from(_KEYS.join(_TEAMS, _KEYS.c.team_id == _TEAMS.c.id))
    .where(_KEYS.c.fingerprint == bindparam("fingerprint"))
)
KEY_DATES_COLUMNS = (_KEYS.c.fingerprint, _KEYS.c.created_at, _KEYS.c.revoked_at)  # KeyDates
KEYS_IN_BINDING_ORDER = (_KEYS.c.bound_at, _KEYS.c.fingerprint)
_KEY_DATES = (
    core_select(*KEY_DATES_COLUMNS)
    .where(_KEYS.c.team_id == bindparam("team_id"))
    .order_by(*KEYS_IN_BINDING_ORDER)
)


@dataclass(frozen=True)
class TeamRow:
    """A team's row as plain values: what the pipeline reads of it for every message."""

    id: int
    handle: str
    name: str
    email: str
    status: str
    country: str | None
    created_at: datetime


TEAM_COLUMNS = tuple(_TEAMS.c[name] for name in TeamRow.__dataclass_fields__)


@dataclass(frozen=True)
class BoundKey:
    """A key bound to a team, with the team: what the pipeline reads of every signer."""

    team_id: int
    handle: str
    status: str
    email: str
    fingerprint: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class KeyDates:
    fingerprint: str
    created_at: datetime | None
    revoked_at: datetime | None


def normalize_fingerprint(fingerprint: str) -> str:
    return "".join(fingerprint.split()).upper()


def get_team(session: Session, handle: str) -> Team | None:
    return session.exec(select(Team).where(Team.handle == handle)).first()


def get_team_by_id(session: Session, team_id: int) -> Team | None:
    return session.get(Team, team_id)


def add_team(
    session: Session,
    *,
    handle: str,
    name: str,
    email: str,
    status: str,
    country: str | None,
    ti_name: str | None = None,
) -> Team:
    team = Team(
        handle=handle, name=name, email=email, status=status, country=country, ti_name=ti_name
    )
    session.add(team)
    session.flush()
    return team


def list_teams(session: Session) -> list[Team]:
    return list(session.exec(select(Team).order_by(col(Team.handle))))


def team_handles(session: Session) -> dict[int, str]:
    """Team id -> handle, for listings that show many rows with a team each."""
    rows = session.exec(select(Team.id, Team.handle))
    return {team_id: handle for team_id, handle in rows if team_id is not None}


def set_team_status(session: Session, handle: str, status: str) -> Team | None:
    team = get_team(session, handle)
    if team is not None:
        team.status = status
        session.add(team)
        session.flush()
    return team


def get_key(session: Session, fingerprint: str) -> TeamKey | None:
    return session.get(TeamKey, normalize_fingerprint(fingerprint))


def add_key(session: Session, key: TeamKey) -> None:
    """Bind `key` (flushed, so a fingerprint bound already fails here)."""
    key.fingerprint = normalize_fingerprint(key.fingerprint)
    session.add(key)
    session.flush()


def list_keys(session: Session, team_id: int | None = None) -> list[TeamKey]:
    query = select(TeamKey).order_by(
        col(TeamKey.team_id), col(TeamKey.bound_at), col(TeamKey.fingerprint)
    )
    if team_id is not None:
        query = query.where(TeamKey.team_id == team_id)
    return list(session.exec(query))


def keys_of_team(session: Session, team_id: int) -> list[TeamKey]:
    """The team's keys in the order they were bound (as `list_keys` lists them)."""
    return list(session.exec(_KEYS_OF_TEAM, params={"team_id": team_id}))


def team_for_fingerprint(session: Session, fingerprint: str) -> BoundKey | None:
    """The binding of a primary key fingerprint, with its team; None if it is unbound."""
    params = {"fingerprint": normalize_fingerprint(fingerprint)}
    found = session.execute(BOUND_KEY, params).first()
    return None if found is None else BoundKey(*found)


def key_dates_of_team(session: Session, team_id: int) -> list[KeyDates]:
    """The team's keys in binding order, with what choosing one to encrypt to needs."""
    return [KeyDates(*row) for row in session.execute(_KEY_DATES, {"team_id": team_id})]


def remove_key(session: Session, fingerprint: str) -> bool:
    """Unbind a key; False if it was not bound."""
    key = get_key(session, fingerprint)
    if key is None:
        return False
    session.delete(key)
    session.flush()
    return True


def count_submissions(session: Session, team_id: int) -> int:
    query = select(func.count()).select_from(Submission).where(Submission.team_id == team_id)
    return int(session.exec(query).one())


def remove_team(session: Session, team: Team) -> int:
    """Delete a team, its key bindings and what the TI directory said of it; its
    messages stay, naming no team. Returns
    how many messages named it. The caller checks it has no submissions first."""
    detached = session.execute(
        update(Message).where(col(Message.team_id) == team.id).values(team_id=None)
    )
    session.execute(delete(TeamKey).where(col(TeamKey.team_id) == team.id))
    session.execute(delete(TiKey).where(col(TiKey.team_id) == team.id))  # what TI said of it
    session.execute(delete(TiEntry).where(col(TiEntry.team_id) == team.id))
    session.delete(team)
    session.flush()
    return int(getattr(detached, "rowcount", 0) or 0)


def revoke_key(
    session: Session, fingerprint: str, reason: str | None, when: datetime
) -> TeamKey | None:
    key = get_key(session, fingerprint)
    if key is not None:
        key.revoked_at = when
        key.revoke_reason = reason
        session.add(key)
        session.flush()
    return key


def add_coordinator(
    session: Session, *, email: str, fingerprint: str, name: str | None = None
) -> Coordinator:
    coordinator = Coordinator(
        email=email, name=name, fingerprint=normalize_fingerprint(fingerprint)
    )
    session.add(coordinator)
    session.flush()
    return coordinator


def get_coordinator(session: Session, email: str) -> Coordinator | None:
    query = select(Coordinator).where(Coordinator.email == email)
    return session.exec(query).first()


def coordinator_for_fingerprint(session: Session, fingerprint: str) -> Coordinator | None:
    statement = select(Coordinator).where(
        col(Coordinator.fingerprint) == normalize_fingerprint(fingerprint)
    )
    return session.exec(statement).first()


def list_coordinators(session: Session) -> list[Coordinator]:
    return list(session.exec(select(Coordinator).order_by(col(Coordinator.email))))


def remove_coordinator(session: Session, email: str) -> bool:
    coordinator = get_coordinator(session, email)
    if coordinator is None:
        return False
    session.delete(coordinator)
    session.flush()
    return True


def last_submission_at(session: Session, team_id: int) -> datetime | None:
    query = select(func.max(Submission.created_at)).where(Submission.team_id == team_id)
    return session.exec(query).one()


# --- the Trusted Introducer directory (`teams sync`) --------------------------------------


def linked_teams(session: Session) -> list[Team]:
    """Teams linked to a TI directory entry, by handle."""
    query = select(Team).where(col(Team.ti_name).is_not(None)).order_by(col(Team.handle))
    return list(session.exec(query))


def set_team_ti(session: Session, team: Team, ti_name: str | None) -> None:
    """Link `team` to another TI entry (None: to none); what the old one said is dropped."""
    if team.ti_name != ti_name:
        forget_ti_entry(session, team.id or 0)
    team.ti_name = ti_name
    session.add(team)
    session.flush()


def set_team_email(session: Session, team: Team, email: str) -> None:
    team.email = email
    session.add(team)
    session.flush()


def ti_entry(session: Session, team_id: int) -> TiEntry | None:
    return session.get(TiEntry, team_id)


def ti_keys(session: Session, team_id: int) -> list[TiKey]:
    query = select(TiKey).where(TiKey.team_id == team_id).order_by(col(TiKey.fingerprint))
    return list(session.exec(query))


def forget_ti_entry(session: Session, team_id: int) -> None:
    for key in ti_keys(session, team_id):
        session.delete(key)
    entry = ti_entry(session, team_id)
    if entry is not None:
        session.flush()  # the keys first: they refer to the entry
        session.delete(entry)
    session.flush()


def save_ti_entry(session: Session, entry: TiEntry, keys: list[tuple[str, date | None]]) -> None:
    """Record what the directory says of `entry.team_id` now, replacing what it said."""
    forget_ti_entry(session, entry.team_id)
    session.add(entry)
    session.flush()
    for fingerprint, expires in keys:
        session.add(TiKey(team_id=entry.team_id, fingerprint=fingerprint, expires=expires))
    session.flush()


def ti_links_seen_before(session: Session, cutoff: datetime) -> list[tuple[str, datetime | None]]:
    """(handle, last seen) of linked teams no applied sync has found since `cutoff`."""
    query = (
        select(Team.handle, TiEntry.seen_at)
        .join(TiEntry, col(TiEntry.team_id) == col(Team.id), isouter=True)
        .where(col(Team.ti_name).is_not(None))
        .where((col(TiEntry.seen_at).is_(None)) | (col(TiEntry.seen_at) < cutoff))
        .order_by(col(Team.handle))
    )
    return [(handle, seen) for handle, seen in session.exec(query)]


def bound_keys_ti_expiring(session: Session, by: date) -> list[tuple[str, str, date]]:
    """(handle, fingerprint, directory expiry) of unrevoked bound keys that the TI
    directory says expire on or before `by`, soonest first."""
    query = (
        select(Team.handle, TiKey.fingerprint, col(TiKey.expires))
        .join(TeamKey, (col(TeamKey.fingerprint) == col(TiKey.fingerprint)))
        .join(Team, col(Team.id) == col(TeamKey.team_id))
        .where(col(TiKey.team_id) == col(TeamKey.team_id))
        .where(col(TeamKey.revoked_at).is_(None))
        .where(col(TiKey.expires).is_not(None), col(TiKey.expires) <= by)
        .order_by(col(TiKey.expires), col(Team.handle))
    )
    return [(h, f, e) for h, f, e in session.exec(query) if e is not None]
