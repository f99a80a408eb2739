"""`[retention]` applied: the raw bytes of processed messages past their retention go,
their records stay (state, reason, hashes, size, when and how they came).

In: the `App` (its configuration and engine).
Out: a `Purge` (what was due, how many and how many bytes went). Run by `messages purge`,
daily by clearinghouse-purge.timer. Refused mail (quarantined, rejected, duplicate) is
kept `refused_raw_days` for an admin to look at or reprocess; accepted mail
`accepted_raw_days` (0: kept; its reports are stored apart from it in any case).
On SQLite the freed pages are reused by new messages; the file shrinks only with VACUUM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.app import App
from gateway.logs import event
from store.retention import Due, due_for_purge, purge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purge:
    due: list[Due]
    purged: int  # 0 with dry_run

    @property
    def bytes(self) -> int:
        return sum(d.size for d in self.due)


def past_retention(app: App) -> list[Due]:
    """The processed messages whose raw bytes are past `[retention]`, oldest first."""
    keep = app.config.retention
    return due_for_purge(
        app.engine,
        refused_days=keep.refused_raw_days,
        accepted_days=keep.accepted_raw_days,
        now=app.clock(),
    )


def purge_raw(app: App, due: list[Due], progress: Callable[[int], None] | None = None) -> Purge:
    """Delete the raw bytes of `due` (from `past_retention`); `progress` hears of each
    batch."""
    if not due:
        return Purge(due, 0)
    purged = purge(app.engine, [d.id for d in due], progress=progress)
    event(log, "raw messages purged", messages=purged, bytes=sum(d.size for d in due))
    return Purge(due, purged)
