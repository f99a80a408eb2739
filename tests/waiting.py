"""Waiting in a test for what another thread or process does: `wait_until`.

A test that polls for a condition polls here: with a deadline, failing with a message
that says what it waited for. Nothing waits without end, and no fixed sleep stands in
for an event (where a test can hold the other side, it uses an Event or a Barrier).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    what: str | Callable[[], str],
    *,
    seconds: float = 10.0,
    interval: float = 0.05,
) -> None:
    """Return as soon as `condition()` is true; after `seconds`, fail the test
    (AssertionError) saying that it gave up waiting for `what`.

    `condition` may fail the test itself when waiting longer is pointless (the process
    that was to do the work has died). `interval` is how long to sleep between looks.
    `what` may be a function, called on failure to say also how things stand then.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"gave up after {seconds:g} s waiting for {said}")
        time.sleep(interval)
