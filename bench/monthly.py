"""What the monthly statistics cost as the clearinghouse grows: 100, 300 and 1,000 teams.

For each size, a fresh store (SQLite in a temporary directory, or a schema given with
--database-url) gets that many teams with 24 months of history each (a type 1 and a
type 2 report per team and month, written straight into the tables: the set-up is not
what is measured), then `report monthly --no-send` runs for the newest month: the
statistics, the 12-month trends, the PDFs and the CSV. Prints the seconds and the cost
per team for each size; the cost per team should stay flat (linear growth). Also the CPU
seconds of this process: on a machine that other work shares they move less than the
wall clock (the run is one thread; with --database-url they leave out the server's share).
Not part of the test suite: `python bench/monthly.py --help`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, insert

from gateway.app import App
from gateway.config import config_from_mapping
from gateway.jobs.monthly import run_monthly
from parsers.model import TYPE1_FIELDS
from store.models import Message, Submission, Team, Type1Value, Type2Count

PERIOD = "2026-10"
MONTHS = 24
TYPE2 = [("abusive-content", "spam"), ("intrusion-attempts", "login-attempts"),
         ("intrusions", None), ("malicious-code", "virus"), ("other", None)]  # fmt: skip
NOW = datetime(2026, 11, 5, tzinfo=UTC)


def periods(newest: str, count: int) -> list[str]:
    year, month = map(int, newest.split("-"))
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found


def app_for(home: Path, database_url: str) -> App:
    url = database_url or f"sqlite:///{home / 'clearinghouse.db'}"
    config = config_from_mapping({"clearinghouse": {"home": str(home), "database_url": url}})
    app = App(config, clock=lambda: NOW)
    app.initialise()
    return app


def fill(app: App, teams: int) -> None:
    """`teams` teams, each with a type 1 and a type 2 report for each of MONTHS months."""
    with app.engine.begin() as connection:
        for index in range(teams):
            add_history(connection, index)


def add_history(connection: Connection, index: int) -> None:
    handle = f"team{index:04d}"
    team_id = connection.execute(
        insert(Team).values(
            handle=handle,
            name=handle.upper(),
            email=f"cert@{handle}.example",
            status="accredited",
            created_at=NOW,
        )  # fmt: skip
    ).inserted_primary_key[0]  # type: ignore[index]
    message_id = connection.execute(
        insert(Message).values(
            channel="smtp",
            received_at=NOW,
            raw=b"-",
            raw_sha256="-",
            size=1,
            state="accepted",
            team_id=team_id,
            attempts=1,
        )  # fmt: skip
    ).inserted_primary_key[0]  # type: ignore[index]
    for month, period in enumerate(periods(PERIOD, MONTHS)):
        for report_type in ("type1", "type2"):
            submission = connection.execute(
                insert(Submission).values(
                    team_id=team_id,
                    type=report_type,
                    period=period,
                    revision=1,
                    message_id=message_id,
                    source="body",
                    created_at=NOW,
                )  # fmt: skip
            ).inserted_primary_key[0]  # type: ignore[index]
            add_values(connection, submission, report_type, index + month)


def add_values(connection: Connection, submission: int, report_type: str, seed: int) -> None:
    if report_type == "type1":
        rows = [{"submission_id": submission, "field": name, "value": seed * 7 + i}
                for i, name in enumerate(TYPE1_FIELDS)]  # fmt: skip
        connection.execute(insert(Type1Value), rows)
    else:
        rows = [{"submission_id": submission, "class_slug": c, "type_slug": t,
                 "count": (seed + i) % 50, "taxonomy": "ecsirt-v2",
                 "sent_taxonomy": "ecsirt-v2", "sent_class": c, "sent_type": t}
                for i, (c, t) in enumerate(TYPE2)]  # fmt: skip
        connection.execute(insert(Type2Count), rows)


def measure(root: Path, teams: int, database_url: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one `report monthly --no-send` for `teams` teams."""
    app = app_for(root / f"teams-{teams}", database_url)
    try:
        fill(app, teams)
        start, cpu = time.perf_counter(), time.process_time()
        run_monthly(app, PERIOD, send=False)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        app.engine.dispose()


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,300,1000", help="team counts, comma-separated")
    p.add_argument("--database-url", default="", help="an EMPTY database (default: SQLite)")
    args = p.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    if args.database_url and len(sizes) > 1:
        p.error("--database-url takes one size at a time (each size needs an empty store)")
    root = Path(tempfile.mkdtemp(prefix="clearinghouse-monthly-"))
    try:
        print(f"{'teams':>6}  {'seconds':>8}  {'ms per team':>11}  {'CPU seconds':>11}")
        for teams in sizes:
            seconds, cpu = measure(root, teams, args.database_url)
            per_team = seconds / teams * 1000
            print(f"{teams:>6}  {seconds:>8.2f}  {per_team:>11.2f}  {cpu:>11.2f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
