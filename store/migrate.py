"""Schema migrations: bring a database to the schema this version of the code expects.

In: an `Engine`. Out: the database at the newest revision in store/migrations/versions
(Alembic, configured here rather than by an alembic.ini, so it works from an installed
package), with its data kept. `upgrade` is what `init`, `db upgrade`, `serve` and the
tests run:

- an empty database gets the current models' tables at once and is stamped with the
  newest revision: Alembic's recipe for new databases, equivalent to replaying every
  revision and much quicker (tests/store/test_migrations.py holds them equal);
- a database at an older revision, or one made before migrations existed (tables but
  no `alembic_version`), is upgraded by the revisions themselves; the baseline revision
  creates only the tables such a database lacks.

On PostgreSQL the whole upgrade is one transaction under an advisory lock, so gateway
instances that start together migrate one after the other, and only the first does work.

Developers add a revision after changing store/models.py with
`python -m store.migrate revision "what changed"`, then read and fix what it wrote.
"""

from __future__ import annotations

import sys
import tempfile
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

import store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from store.db import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key shared by every migrating instance ("clea" in ASCII).
_LOCK_KEY = 0x636C6561


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration; env.py migrates `connection` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def scripts() -> ScriptDirectory:
    """The revisions shipped with the code (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision; raises if the revisions have more than one head."""
    newest = scripts().get_current_head()
    if newest is None:
        raise RuntimeError(f"no revisions in {MIGRATIONS}")
    return newest


def current(engine: Engine) -> str | None:
    """The revision the database is at; None if it has never been migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest), keeping its data."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if revision == "head" and _is_empty(connection):
            SQLModel.metadata.create_all(connection)
            MigrationContext.configure(connection).stamp(scripts(), "head")
        else:
            command.upgrade(alembic_config(connection), revision)


def _is_empty(connection: Connection) -> bool:
    """Neither a version table nor any of our tables (other applications' may be there)."""
    present = set(inspect(connection).get_table_names())
    return VERSION_TABLE not in present and not present & set(SQLModel.metadata.tables)


def make_revision(message: str) -> Path:
    """Write a new revision with the difference between the models and the newest one."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            with engine.begin() as connection:
                config = alembic_config(connection)
                command.upgrade(config, "head")
                number = len(list(scripts().walk_revisions())) + 1
                written = command.revision(
                    config, message, autogenerate=True, rev_id=f"{number:04d}"
                )
        finally:
            engine.dispose()
    if written is None or isinstance(written, list):
        raise RuntimeError("alembic wrote no single revision")
    return Path(written.path)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "revision":
        print('usage: python -m store.migrate revision "what changed"', file=sys.stderr)
        return 2
    print(make_revision(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
