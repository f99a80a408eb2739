"""What a piece of work costs the database, counted rather than timed.

On a machine others share, wall time says little; what a command asks of the database
does not move with the machine. In: a block of code run under `Probe()`. Out: the
statements it ran (SQL and parameters, in order), the CPU seconds of this process, and
the database's work:

- SQLite: virtual-machine instructions, counted while the block runs (sqlite3's
  progress handler, called every `STEP` instructions);
- PostgreSQL: shared buffers (8 KiB pages) each statement touched, by replaying it with
  EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back (`replay`).

`plans` gives each distinct statement's plan (EXPLAIN QUERY PLAN, or EXPLAIN ANALYZE), to
see where the work goes. Used by bench/years.py; not part of the gateway.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool

STEP = 100  # SQLite VM instructions between two calls of the progress handler
_WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any  # as the driver got them (the first set of an executemany)
    many: bool


@dataclass
class Probe:
    """Counts what runs inside `with probe.running():`; one probe at a time."""

    statements: list[Statement] = field(default_factory=list)
    vm_steps: int = 0
    cpu: float = 0.0

    @contextmanager
    def running(self) -> Iterator[Probe]:
        global _ACTIVE
        install()
        _ACTIVE = self
        start = time.process_time()
        try:
            yield self
        finally:
            self.cpu += time.process_time() - start
            _ACTIVE = None

    @property
    def queries(self) -> int:
        return len(self.statements)


_ACTIVE: Probe | None = None
_INSTALLED = False


def install() -> None:
    """Listen to every engine and connection from now on (connections made before are
    not counted by SQLite's progress handler)."""
    global _INSTALLED
    if _INSTALLED:
        return
    event.listen(Engine, "before_cursor_execute", _seen)
    event.listen(Pool, "connect", _count_steps)
    _INSTALLED = True


def _seen(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool) -> None:
    if _ACTIVE is not None:
        first = parameters[0] if many and parameters else parameters
        _ACTIVE.statements.append(Statement(sql, first, many))


def _count_steps(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.set_progress_handler(_step, STEP)


def _step() -> int:
    if _ACTIVE is not None:
        _ACTIVE.vm_steps += STEP
    return 0  # go on


def _explainable(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", *_WRITES)


def replay(engine: Engine, statements: list[Statement]) -> tuple[int, int]:
    """PostgreSQL: (buffers touched, statements that could not be replayed), by running
    each statement again under EXPLAIN (ANALYZE, BUFFERS), rolled back."""
    total, failed = 0, 0
    for statement in statements:
        if not _explainable(statement.sql):
            continue
        plan = _explain(engine, statement, "ANALYZE, BUFFERS, FORMAT JSON")
        if plan is None:
            failed += 1
            continue
        document = plan[0] if not isinstance(plan[0], str) else json.loads(plan[0])
        top = document[0]["Plan"]
        total += int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    return total, failed


def _explain(engine: Engine, statement: Statement, options: str) -> Any:
    """The EXPLAIN output of one statement, in a transaction rolled back; None if the
    statement fails when run again (a unique key it already took, say)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            if engine.dialect.name == "postgresql":
                cursor.execute(f"EXPLAIN ({options}) {statement.sql}", statement.parameters)
                return [row[0] for row in cursor.fetchall()]
            cursor.execute(f"EXPLAIN QUERY PLAN {statement.sql}", statement.parameters or ())
            return "\n".join(f"{row[1]:>3} {row[3]}" for row in cursor.fetchall())
        except Exception:  # noqa: BLE001 - a statement that cannot run twice is skipped
            return None
        finally:
            raw.rollback()
    finally:
        raw.close()


def plans(engine: Engine, statements: list[Statement]) -> list[tuple[str, str]]:
    """(SQL, plan) for each distinct statement, in the order first run."""
    found, seen = [], set()
    for statement in statements:
        if statement.sql in seen or not _explainable(statement.sql):
            continue
        seen.add(statement.sql)
        if engine.dialect.name == "postgresql":
            plan = _explain(engine, statement, "ANALYZE, BUFFERS, COSTS OFF, FORMAT TEXT")
            text = None if plan is None else "\n".join(plan)
        else:
            text = _explain(engine, statement, "")
        found.append((" ".join(statement.sql.split()), text or "(could not run again)"))
    return found
