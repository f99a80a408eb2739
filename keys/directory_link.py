"""Linking a registry team to its Trusted Introducer entry, by TI short name.

In: a team and the short name an admin typed (`teams add --ti`, `teams set-ti`). Out: the
link stored on the team (one audit entry), or a RegistryError when the name is unusable
or another team holds it already: two teams linked to one directory entry would share its
classification and its keys.
"""

from __future__ import annotations

from sqlmodel import Session

from contract.errors import RegistryError
from keys.directory import check_link_name, link_key
from store import audit
from store import registry as q
from store.models import Team


def claim_link(session: Session, short_name: str, team: Team | None = None) -> str:
    """The tidied short name, once sure no team but `team` is linked to it."""
    name = check_link_name(short_name)
    for other in q.linked_teams(session):
        if other.id != (team.id if team else None) and link_key(other.ti_name or "") == link_key(
            name
        ):
            raise RegistryError(
                f"team {other.handle!r} is linked to TI entry {other.ti_name!r} already; "
                f"unlink it first (`teams set-ti {other.handle} --none`)"
            )
    return name


def set_link(session: Session, actor: str, team: Team, short_name: str | None) -> str | None:
    """Link `team` to `short_name` (None: unlink), audited; the stored name."""
    before = team.ti_name
    name = None if short_name is None else claim_link(session, short_name, team)
    if name == before:
        return name
    q.set_team_ti(session, team, name)
    audit.record(session, actor, "teams set-ti", team.handle, f"{before!r} -> {name!r}")
    return name
