"""The monthly statistics run, top to bottom: load → compute → write files → mail.

In: the `App` and a period. Out: in `[reports] output_dir/YYYY-MM/` the files
public.pdf, public.csv, internal-type1.pdf, internal-type2.pdf and
coordinator-summary.pdf (each written to a temporary file, fsynced, renamed); then,
unless `send` is off, sealed mails in the outbox (`gateway/jobs/mailing.py` says who
gets what); and a `MonthlyRun` row recording the run.

Reruns are idempotent. The same stored data gives byte-identical files (the PDFs are
rendered in reportlab's invariant mode, and nothing in them depends on the clock), and
every mail carries a dedupe key naming the period, the mailing generation, the recipient
and its role, so a rerun queues nothing already queued. `resend` starts a new
generation, whose keys are all new: everyone entitled is mailed again.

The pseudonym secret (see `reports/statistics.py`) is 32 random bytes in
`<home>/statistics.key`, created on first use: without it nobody can tell which team
got which letter; losing it only changes the letters of future runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gateway.app import App
from gateway.jobs.files import atomic_write, pseudonym_secret
from gateway.jobs.mailing import Delivery, enqueue_mails, seal_mails
from gateway.jobs.publish import publish_site
from reports.csv_export import public_csv
from reports.internal_pdf import internal_pdf
from reports.periods import submission_round, window
from reports.public_pdf import public_pdf
from reports.statistics import MonthlyStatistics, compute
from reports.summary import CoordinatorSummary, summarise
from reports.summary_pdf import summary_pdf
from store.db import open_session, transaction
from store.notices import replayed_refusals
from store.registry import list_teams
from store.statistics import (
    message_counts,
    newest_generation,
    newest_reports,
    record_run,
    revisions,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    period: str
    directory: Path
    files: dict[str, bytes]  # file name -> content, as written
    digest: str
    statistics: MonthlyStatistics
    summary: CoordinatorSummary
    delivery: Delivery | None  # None: --no-send


def run_monthly(
    app: App,
    period: str,
    *,
    send: bool = True,
    resend: bool = False,
    progress: Progress = lambda _line: None,
) -> RunResult:
    """Compute, write and (unless `send` is False) mail the statistics for `period`."""
    stats, summary, as_of = _compute(app, period)
    for report_type in ("type1", "type2"):
        teams = stats.of(report_type).teams
        progress(f"{period}: type {report_type[-1]} from {teams} team{'s' if teams != 1 else ''}")
    name = app.config.clearinghouse.name
    files = {
        "public.pdf": public_pdf(stats, name, as_of),
        "public.csv": public_csv(stats),
        "internal-type1.pdf": internal_pdf(stats, "type1", name, None),
        "internal-type2.pdf": internal_pdf(stats, "type2", name, None),
        "coordinator-summary.pdf": summary_pdf(summary, name),
    }
    directory = app.config.reports.output_dir / period
    for filename, data in files.items():
        atomic_write(directory / filename, data)
        progress(f"wrote {directory / filename}")
    digest = _digest(files)
    with open_session(app.engine) as s:
        generation = newest_generation(s, period) + (1 if send and resend else 0)
    sealed = None
    if send:
        sealed = seal_mails(app, stats, summary, files, generation=generation, progress=progress)
    with transaction(app.engine) as s:  # the mails and the record of the run, together
        queued = enqueue_mails(s, sealed, progress) if sealed is not None else 0
        record_run(s, period=period, generation=generation, sent=send, queued=queued, digest=digest)
    delivery = None
    if sealed is not None:
        delivery = Delivery(generation, queued, sealed.already, sealed.skipped)
        progress(f"queued {queued} mail{'s' if queued != 1 else ''} (generation {generation})")
    else:
        progress("--no-send: files only, no mail queued")
    publish_site(app, period=period, progress=progress)  # the site, with this month in it
    return RunResult(period, directory, files, digest, stats, summary, delivery)


def _compute(app: App, period: str) -> tuple[MonthlyStatistics, CoordinatorSummary, str]:
    months = window(period)
    config = app.config
    with open_session(app.engine) as s:
        reports = newest_reports(s, months[0], months[-1])
        history = revisions(s, months[0], months[-1])
        teams = list_teams(s)
        # The messages of the month's submission round: its reports arrive up to the
        # report day of the next month, and so do the problems teams had sending them.
        start, end = submission_round(period, config.reports.day_of_month)
        counts = message_counts(s, start, end)
        replays = replayed_refusals(
            s,
            start,
            end,
            signed_before=timedelta(hours=config.policy.replay_after_hours),
        )
    stats = compute(
        reports,
        period,
        app.taxonomy,
        minimum=config.reports.min_teams_for_public,
        secret=pseudonym_secret(config.clearinghouse.home),
    )
    summary = summarise(
        period,
        teams,
        reports,
        history,
        counts,
        allowed_statuses=config.policy.allowed_statuses,
        day_of_month=config.reports.day_of_month,
        replayed=replays,
    )
    stored = [r.created_at for r in reports if r.period == period]
    as_of = (
        f"newest revision of each team's report as stored up to {_utc(max(stored))} UTC"
        if stored
        else "no reports stored for the month"
    )
    return stats, summary, as_of


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _digest(files: dict[str, bytes]) -> str:
    outer = hashlib.sha256()
    for filename in sorted(files):
        outer.update(f"{filename}\0{hashlib.sha256(files[filename]).hexdigest()}\n".encode())
    return outer.hexdigest()
