"""Statistics commands: the monthly report and the daily reminders."""

from __future__ import annotations

from datetime import datetime

import click

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import pass_app
from gateway.cli.progress import steps
from gateway.cli.views import say
from gateway.jobs.monthly import run_monthly
from gateway.jobs.reminders import send_reminders
from reports.periods import parse_period, period_of, previous_period
from store.db import open_session
from store.registry import list_coordinators, list_teams


@click.group()
def report() -> None:
    """Monthly statistics: PDFs and CSV in [reports] output_dir, mailed encrypted, and the
    public site in [publication] site_dir."""


def _report_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:

    if value is not None:
        try:
            parse_period(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@report.command("monthly")
@click.option(
    "--period",
    default=None,
    metavar="YYYY-MM",
    callback=_report_period,
    help="The month to report on (default: the previous month).",
)
@click.option("--no-send", is_flag=True, help="Write the files only; queue no mail.")
@click.option("--resend", is_flag=True, help="Mail everyone entitled again, even if mailed before.")
@pass_app
def report_monthly(app: App, period: str | None, no_send: bool, resend: bool) -> None:
    """Compute, write and mail one month's statistics. Reruns queue nothing new."""
    if no_send and resend:
        raise click.UsageError("--no-send and --resend exclude each other")
    today = app.clock().date()
    chosen = period or previous_period(today)
    if chosen >= period_of(today):
        raise click.BadParameter(f"{chosen} is not over yet", param_hint="'--period'")
    app.create_schema()  # adds tables a newer version needs (monthly runs); keeps the rest
    with steps(f"statistics for {chosen}", _monthly_steps(app), click.echo) as progress:
        result = run_monthly(app, chosen, send=not no_send, resend=resend, progress=progress)
    say(f"statistics for {chosen} are in {result.directory}")
    if result.delivery is not None and result.delivery.skipped:
        raise ClearinghouseError(
            f"{len(result.delivery.skipped)} recipient(s) could not be mailed: "
            + "; ".join(result.delivery.skipped)
        )


@report.command("publish")
@click.option(
    "--period",
    default=None,
    metavar="YYYY-MM",
    callback=_report_period,
    help="Publish this month as `report monthly` does: its files and the site-wide ones, "
    "other months read back from their public.json (default: rebuild every month).",
)
@pass_app
def report_publish(app: App, period: str | None) -> None:
    """(Re)build the public statistics site from every month `report monthly` ran for.

    Unchanged files are left alone; public.csv, public.json and feed.atom are signed by
    the gateway key (.asc beside them) when they change.
    """
    from gateway.jobs.publish import publish_site

    publish_site(app, period=period, progress=click.echo)  # its last line names the directory


@report.command("reminders")
@click.option(
    "--date",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Act as if today were this day (default: today).",
)
@pass_app
def report_reminders(app: App, on: datetime | None) -> None:
    """Remind teams that have not submitted last month; warn about expiring keys.

    Run it daily (clearinghouse-reminders.timer): each reminder and warning goes once.
    """
    result = send_reminders(app, on.date() if on else None)
    say(
        f"{result.period}: {len(result.reminders)} reminder(s) "
        f"{', '.join(result.reminders)}; {len(result.warnings)} key warning(s)"
    )
    if result.unreachable:
        raise ClearinghouseError(
            "no usable key to encrypt to for: " + ", ".join(sorted(set(result.unreachable)))
        )


def _monthly_steps(app: App) -> int:
    """About how many progress lines a monthly run prints: files, then mails."""
    with open_session(app.engine) as s:
        return 8 + 2 * len(list_teams(s)) + len(list_coordinators(s))
