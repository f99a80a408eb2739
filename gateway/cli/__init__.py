"""The `clearinghouse` command line (docs/reference.md "Command line"): parse, build an App, call.

Every command is a thin layer: it loads the configuration once, builds one `App`, calls
the module that does the work and prints the result, as text or with `--json`. Errors
from the project's exception tree print one line and exit with their exit code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.audit import audit
from gateway.cli.compose import compose_command, template_command
from gateway.cli.coordinators import coordinators
from gateway.cli.demo import demo
from gateway.cli.keys import keys_group
from gateway.cli.messages import messages
from gateway.cli.outbox import outbox
from gateway.cli.report import report
from gateway.cli.service import health, ingest, poll_imap, process, serve
from gateway.cli.setup import db_group, gateway_key, init
from gateway.cli.submissions import submissions
from gateway.cli.teams import teams
from gateway.cli.views import say
from gateway.config import load_config
from gateway.logs import LogFormat, setup_logging
from store.readiness import describe


class _Group(click.Group):
    """Turns the project's errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClearinghouseError as exc:
            say(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (OperationalError, ProgrammingError) as exc:  # server gone, file damaged
            logging.getLogger(__name__).debug("database error", exc_info=True)
            url = ctx.obj.engine.url if isinstance(ctx.obj, App) else "the database"
            say(f"error: {describe(exc, url)}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CLEARINGHOUSE_CONFIG",
    help="TOML configuration (default: built-in).",
)
@click.version_option(package_name="clearinghouse", prog_name="clearinghouse")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as key=value pairs or JSON (default: [logging] format).",
)
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, verbose: bool, log_format: LogFormat | None
) -> None:
    """Clearinghouse: secure email intake for CSIRT statistics."""
    setup_logging(log_format or "text", level=logging.DEBUG if verbose else logging.INFO)
    if ctx.invoked_subcommand in _WITHOUT_GATEWAY:
        return
    try:
        ctx.obj = App(load_config(config_path))
    except ClearinghouseError as exc:
        say(f"error: {exc}", err=True)
        ctx.exit(75 if ctx.invoked_subcommand == "ingest" else exc.exit_code)
    logs = ctx.obj.config.logging
    level = logging.DEBUG if verbose else logging.getLevelName(logs.level.upper())
    setup_logging(
        log_format or logs.format,
        level=level,
        max_repeats=logs.max_repeats,
        repeat_window_seconds=logs.repeat_window_seconds,
    )
    ctx.call_on_close(lambda: _dispose(ctx.obj))
    ctx.meta["config_path"] = config_path


# Commands a team runs on its own machine: no gateway configuration or data directory.
_WITHOUT_GATEWAY = frozenset({"demo", "compose", "template"})


def _dispose(app: App) -> None:
    """Close the database connections the command opened (if it opened any)."""
    if "engine" in app.__dict__:  # a cached_property that was used
        app.engine.dispose()


# Team side: no gateway configuration needed (see _WITHOUT_GATEWAY).
for command in (
    init,
    gateway_key,
    db_group,
    ingest,
    process,
    serve,
    poll_imap,
    health,
    teams,
    keys_group,
    coordinators,
    audit,
    messages,
    submissions,
    outbox,
    report,
    compose_command,
    template_command,
    demo,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="clearinghouse")
