"""The audit log of the trust registry: every change, with who made it and when.

In: the caller's session (the transaction that makes the change) and what changed. Out:
`AuditEntry` rows, listed by `clearinghouse audit`. Entries are only ever added.

Who: the operating-system user running the command and, when it runs under sudo, the
user who called sudo (`SUDO_USER`), since on a shared gateway host most admin commands
run as the service user through sudo.
"""

from __future__ import annotations

import getpass
import os

from sqlmodel import Session, col, select

from store.models import AuditEntry


def local_actor() -> str:
    """`alice`, or `clearinghouse (sudo: alice)` when alice ran the command with sudo."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid {os.getuid()}"
    sudo_user = os.environ.get("SUDO_USER")
    return f"{user} (sudo: {sudo_user})" if sudo_user and sudo_user != user else user


def record(session: Session, actor: str, action: str, subject: str, details: str = "") -> None:
    """Add one entry to the caller's transaction."""
    session.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))
    session.flush()


def list_entries(
    session: Session, *, subject: str | None = None, limit: int | None = None
) -> list[AuditEntry]:
    """Entries oldest first; with `limit`, the newest `limit` of them."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc())
    if subject is not None:
        query = query.where(col(AuditEntry.subject) == subject)
    if limit is not None:
        query = query.limit(limit)
    return list(reversed(session.exec(query).all()))
