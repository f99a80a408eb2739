"""One thread that stops gpg processes: at their time limit, or as soon as what they
have written so far shows they must not go on.

In: a process group to watch (`watch`), with a deadline and optionally a check of the
process's output so far (run every `POLL_SECONDS`). Out: the group killed with SIGKILL
when either fires, and the `Watched` entry saying why (`TIMEOUT`, or what the check
returned).

Why one thread, and not a timeout on each wait: the thread that runs gpg sleeps in one
`waitpid` until gpg ends (a wait with a timeout polls, waking the thread and taking the
interpreter lock again and again: `keys/gpg_process.py` explains what that cost). The
check is what stops key packets nested inside the encryption, which only gpg sees: it
writes a status line (ENC_TO) for each one as it meets it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TIMEOUT = "timeout"  # killed at its deadline
POLL_SECONDS = 0.02  # how often checks run, while any process has one


@dataclass(eq=False)
class Watched:
    pgid: int
    deadline: float | None
    check: Callable[[], str | None] | None = None  # why to stop it now, if it must
    outcome: str | None = None  # TIMEOUT, or what the check returned, once killed


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group (gpg and anything it started in it)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:  # it ended meanwhile
        return


class Watchdog:
    """Watches any number of process groups from one daemon thread, started on first use."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: list[Watched] = []
        self._thread: threading.Thread | None = None

    def watch(
        self, pgid: int, timeout: float | None, check: Callable[[], str | None] | None = None
    ) -> Watched:
        """Watch the group `pgid` (a process of ours, not yet reaped) from now on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        entry = Watched(pgid, deadline, check)
        with self._changed:
            self._watched.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gpg-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()
        return entry

    def done(self, entry: Watched) -> None:
        """Stop watching (before the process is reaped: its group id is not reused)."""
        with self._changed:
            if entry in self._watched:
                self._watched.remove(entry)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for entry in list(self._watched):
                    if entry.deadline is not None and now >= entry.deadline:
                        self._stop(entry, TIMEOUT)
                    elif entry.check is not None and (why := entry.check()):
                        self._stop(entry, why)
                self._changed.wait(self._sleep(now))

    def _sleep(self, now: float) -> float | None:
        """Until the next deadline, or the next round of checks; None: until told."""
        waits = [e.deadline - now for e in self._watched if e.deadline is not None]
        if any(e.check is not None for e in self._watched):
            waits.append(POLL_SECONDS)
        return max(0.0, min(waits)) if waits else None

    def _stop(self, entry: Watched, outcome: str) -> None:
        entry.outcome = outcome
        self._watched.remove(entry)
        kill_group(entry.pgid)


WATCHDOG = Watchdog()
