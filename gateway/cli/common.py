"""What every command module shares: the App passed down by click, and `--json`.

`pass_app` hands a command the `App` the root command built, once the command's own
arguments have been read (so `--help` always works), and refuses to run a command on a
gateway that is not ready for it: a data directory `init` has not made, a database at
another schema version. The message says which, and what to do; `ingest` then exits 75,
so that the MTA keeps the message.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from contract.errors import SetupError, StorageError
from gateway.app import App
from store.readiness import Schema

F = TypeVar("F", bound=Callable[..., Any])

# Commands that make a data directory (`gateway-key import` adopts a key instead of
# making one; `gateway-key` alone prints the key, or says there is none yet), and the
# schema commands, which report on any database and create no directory.
_MAKE_A_GATEWAY = frozenset({"init", "gateway-key", "db"})
# Commands that bring an older schema up to date themselves.
_UPGRADING = frozenset({"serve", "poll-imap", "report"})


def pass_app(f: F) -> F:
    """`click.make_pass_decorator(App)`, checking first that the gateway is ready."""

    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        app = ctx.find_object(App)
        if app is None:
            raise RuntimeError("no App: the root command did not build one")
        root = ctx.find_root()
        command = root.invoked_subcommand or ""
        if command not in _MAKE_A_GATEWAY:
            try:
                require_ready(app, command, root.meta.get("config_path"))
            except SetupError as exc:
                if command != "ingest":
                    raise
                click.echo(f"error: {exc}", err=True)
                sys.exit(StorageError.exit_code)
        return ctx.invoke(f, app, *args, **kwargs)

    return run  # type: ignore[return-value]


def require_ready(app: App, command: str, config_path: Path | None) -> None:
    """Refuse to run on a data directory that `init` has not made, or on a schema that
    this version cannot use; the message says which, and what to do."""
    state = app.readiness()
    home = app.config.clearinghouse.home
    source = f"from {config_path}" if config_path else "the default: no --config given"
    if state.schema is Schema.MISSING:
        raise SetupError(
            f"no gateway in {home} ({source}): run `clearinghouse init` to make one there, "
            "or give the --config of the gateway you meant"
        )
    if state.schema is Schema.NEWER:
        raise SetupError(
            f"the database is at revision {state.revision}, newer than this version of "
            f"clearinghouse knows ({state.newest}): run the version that upgraded it"
        )
    if state.schema is Schema.OLDER and command not in _UPGRADING:
        raise SetupError(
            f"the database is at revision {state.revision or 'none'}, this version needs "
            f"{state.newest}: run `clearinghouse db upgrade`"
        )


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)
