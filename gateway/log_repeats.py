"""Identical log events, counted instead of written once they repeat too often.

In: each record the gateway's log handler is about to write. Out: whether to write it,
and for each event that was held back, one line saying how many times it repeated.
Two records are identical when their logger, level, first line of the message, event
fields and exception are (the time is not compared). Of each, `burst` are written per `window`
seconds; the rest are counted and reported in one line when the window has passed.

Why: with the door out of file descriptors, asyncio logged "socket.accept() out of
system resource" thousands of times a second, and the log grew 95 MB in 35 seconds.
Events that differ (one line per processed message, each with its own id) are never
held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, int, str, str, str]
MAX_KEYS = 4096  # events tracked at once; the oldest window is dropped beyond this
_SCAN_SECONDS = 1.0  # how often quiet events are looked at for a pending count


@dataclass
class _Seen:
    record: logging.LogRecord  # the first of its window: what the count line repeats
    window_start: float
    written: int = 0
    held: int = 0


class RepeatLimit:
    """Decides, per identical event, what is written and what is only counted."""

    def __init__(
        self, burst: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: dict[Key, _Seen] = {}
        self._scanned = clock()

    def admit(self, record: logging.LogRecord, fields: object) -> bool:
        """Whether to write `record` (its event `fields` are part of what is compared)."""
        now = self.clock()
        key = _key(record, fields)
        seen = self._seen.get(key)
        if seen is None or now - seen.window_start >= self.window:
            if len(self._seen) >= MAX_KEYS and seen is None:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = seen = _Seen(record, now)
        if seen.written < self.burst:
            seen.written += 1
            return True
        seen.held += 1
        return False

    def due(self, *, everything: bool = False) -> list[tuple[logging.LogRecord, int]]:
        """For each event held back in a window that has passed (or `everything` pending,
        at shutdown): the first record of its window, and how many were held back."""
        now = self.clock()
        if not everything and now - self._scanned < _SCAN_SECONDS:
            return []
        self._scanned = now
        lines = []
        for key, seen in list(self._seen.items()):
            passed = now - seen.window_start >= self.window
            if seen.held and (passed or everything):
                lines.append((seen.record, seen.held))
                seen.held = 0
            if passed:
                del self._seen[key]
        return lines


def _key(record: logging.LogRecord, fields: object) -> Key:
    error = record.exc_info[1] if record.exc_info else None
    exc = f"{type(error).__name__}: {error}" if error is not None else ""
    # The first line only: asyncio appends lines that differ every time (a timer's due
    # time, a socket's repr) to the same event, which fired 150 times a second at shutdown
    # after an accept() storm. The gateway's own events are one line, their fields apart.
    first_line = record.getMessage().split("\n", 1)[0]
    return (record.name, record.levelno, first_line, repr(fields), exc)
