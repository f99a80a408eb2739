"""Is the database there, reachable, and at the schema this version of the code expects?

In: an engine (or, for SQLite, the file it would open). Out: a `Readiness` (the schema's
revision against this version's newest), or a `SetupError` whose one line names the real
cause of an unusable database: a file that is not an SQLite database, a driver that is not
installed, a server that does not answer, a database that does not exist. Looking never
creates anything: an SQLite file that is missing is reported as such, not made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from contract.errors import SetupError
from store import migrate
from store.write_turns import database_file


class Schema(StrEnum):
    READY = "ready"  # at this version's newest revision
    MISSING = "missing"  # no database file, or a database without our tables: run init
    OLDER = "older"  # an earlier revision: `db upgrade` (serve and the jobs do it too)
    NEWER = "newer"  # written by a newer version of the code


@dataclass(frozen=True)
class Readiness:
    schema: Schema
    revision: str | None  # the database's, if it has one
    newest: str  # this version's


def readiness(engine: Engine) -> Readiness:
    """Where the database's schema stands; SetupError if the database cannot be used."""
    newest = migrate.head()
    database = database_file(engine.url)
    if database is not None and not database.exists():
        return Readiness(Schema.MISSING, None, newest)
    try:
        at = migrate.current(engine)
        if at is None:
            with engine.connect() as connection:
                empty = not inspect(connection).get_table_names()
            return Readiness(Schema.MISSING if empty else Schema.OLDER, None, newest)
    except (SQLAlchemyError, ImportError) as exc:
        raise SetupError(describe(exc, engine.url)) from None
    if at == newest:
        return Readiness(Schema.READY, at, newest)
    known = {script.revision for script in migrate.scripts().walk_revisions()}
    return Readiness(Schema.OLDER if at in known else Schema.NEWER, at, newest)


def describe(exc: BaseException, url: URL | str) -> str:
    """What is wrong with the database at `url`, in one line, for an operator."""
    url = make_url(url) if isinstance(url, str) else url
    where = url.render_as_string(hide_password=True)
    cause = str(getattr(exc, "orig", None) or exc).strip()
    return f"{where}: {_kind(exc, cause) or 'the database cannot be used'}: {_first(cause)}"


def brief(exc: BaseException) -> str:
    """`describe` without the database's own words or address: for output that may reach
    someone outside (an MTA puts `ingest`'s message in its log and its bounces)."""
    cause = str(getattr(exc, "orig", None) or exc)
    return _kind(exc, cause) or f"a database error ({type(exc).__name__}; see the gateway's log)"


def _kind(exc: BaseException, cause: str) -> str | None:
    if isinstance(exc, ImportError):
        return "the database driver is not installed"
    if isinstance(exc, ArgumentError):
        return "not a database URL this gateway can use"
    if "file is not a database" in cause or "database disk image is malformed" in cause:
        return "the file is not an SQLite database (or it is damaged)"
    if "unable to open database file" in cause:
        return (
            "the SQLite file cannot be opened (a missing directory, or no permission): a new "
            "gateway needs `clearinghouse init`"
        )
    if found := re.search(r'database "([^"]+)" does not exist', cause):
        return f"the database {found[1]!r} does not exist on the server; create it"
    if "Connection refused" in cause or "could not translate host name" in cause:
        return "the database server does not answer"
    return None


def _first(cause: str) -> str:
    lines = cause.splitlines()
    return lines[0] if lines else cause
