"""Whether the gateway's cost stays flat as years of data pile up: one year against ten.

For each history length (`--years`, default 1 and 10) a fresh store (SQLite in a
temporary directory; with `--database postgresql` a fresh schema of the `test` database
on 127.0.0.1:5432) gets that many years of a clearinghouse of `--teams` teams
(bench/history.py: two reports a team a month, revisions, refused messages, every raw
message and reply as [retention] leaves them), ending last month. Then, `--runs` times
each, it measures:

- one message's processing through the real pipeline: a team's signed+encrypted report
  spooled, claimed and processed as the worker does it (decrypt, verify, store a new
  revision, seal the receipt);
- the listings as the CLI runs them (in this process, with their output thrown away):
  `messages list` and `messages show`, `submissions list` with filters;
- `report monthly --no-send` for the last month;
- the database's size.

Each figure is given as this process's CPU milliseconds (median of the runs; gpg's own
CPU is not in it), the statements run, and the database's work: SQLite VM instructions,
or PostgreSQL buffers touched (bench/probe.py). Then the growth factor from the first
history length to the last, which should stay under 1.5 for every figure; the database
size is also given per year of data (the size itself grows with the data, as it must).
`--plans FILE` writes every distinct statement with its plan, from the longest history.
Not part of the test suite: `python bench/years.py --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, text

from bench.history import INTAKE, History, Shape, handle_of
from bench.probe import Probe, Statement, install, plans, replay
from bench.traffic import REPORT
from gateway.app import App
from gateway.cli import cli
from gateway.config import config_from_mapping
from gateway.jobs.publish import publish_site
from gateway.pipeline import inline_bytes, process_message
from keys.compose import compose
from keys.gpg import GnuPG
from keys.identity import create_identity
from store.leases import claim_next
from store.spool import spool_message

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LIMIT = 1.5


@dataclass
class Figure:
    """One measured thing at one history length: its runs, and the last run's counts."""

    cpu_ms: list[float]
    queries: int
    work: int  # SQLite VM instructions, or PostgreSQL buffers

    @property
    def median(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def spread(self) -> str:
        return f"{min(self.cpu_ms):.1f}-{max(self.cpu_ms):.1f}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teams", type=int, default=1000)
    p.add_argument("--years", default="1,10", help="history lengths, comma-separated")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--runs", type=int, default=3, help="runs of each figure (median)")
    p.add_argument("--plans", type=Path, default=None, help="write statements and plans here")
    p.add_argument("--keep", action="store_true", help="keep the stores (and temp directory)")
    return p.parse_args(argv)


def last_period(now: datetime) -> str:
    index = now.year * 12 + now.month - 2
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# --- a store with history ------------------------------------------------------------------


@dataclass
class Store:
    app: App
    config: Path
    team: GnuPG  # the key of team0000, registered: it sends the measured message
    team_fpr: str
    schema: str | None  # PostgreSQL: the schema to drop afterwards


def make_store(root: Path, years: int, args: argparse.Namespace, now: datetime) -> Store:
    home = root / f"years-{years}"
    schema = None
    if args.database == "postgresql":
        schema = f"bench_years_{years}_{uuid.uuid4().hex[:8]}"
        with admin_engine().begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{home / 'clearinghouse.db'}"
    config = home.parent / f"years-{years}.toml"
    config.write_text(f'[clearinghouse]\nhome = "{home}"\ndatabase_url = "{url}"\n')
    app = App(config_from_mapping(tomllib.loads(config.read_text()), str(config)))
    app.initialise()
    started = time.perf_counter()
    shape = Shape(teams=args.teams, months=12 * years)
    History(app.engine, shape, now).write(last_period(now), progress)
    progress(f"{years} year(s) seeded in {time.perf_counter() - started:.0f} s")
    create_identity(app.gpg, "Bench Clearinghouse", INTAKE)
    team = GnuPG(root / f"team-{years}")
    fpr = team.generate_key("CERT team0000", "cert@team0000.example")
    team.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    app.registry.import_keys(handle_of(0), team.export_public(fpr).encode())
    # The public site as the history's monthly runs would have left it: each month's
    # files, which a month's publication reads back (not measured).
    started = time.perf_counter()
    publish_site(app)
    progress(f"the site of {years} year(s) published in {time.perf_counter() - started:.0f} s")
    return Store(app, config, team, fpr, schema)


def admin_engine() -> Engine:
    return create_engine(POSTGRES, isolation_level="AUTOCOMMIT")


def drop(store: Store) -> None:
    store.app.engine.dispose()
    if store.schema is not None:
        with admin_engine().begin() as connection:
            connection.execute(text(f"DROP SCHEMA {store.schema} CASCADE"))


def progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


# --- what is measured ----------------------------------------------------------------------


# The CLI commands measured, as typed; {period} is the last month, {recent} the newest
# message. Each listing shows a bounded number of rows, whatever the years.
COMMANDS = (
    "messages list --state quarantined --limit 50",
    "messages list --state received",
    "messages show {recent}",
    "submissions list --team team0042 --period {period}",
    "submissions list --period {period} --type type1",
    "report monthly --period {period} --no-send",
    "outbox list --state failed",
    "outbox flush",
    "health",
)


def run_cli(config: Path, argv: list[str]) -> None:
    """One command as `clearinghouse` runs it, its output thrown away, and its exit status:
    `health` fails on the history (its teams have no keys), which costs it nothing less."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main(
                ["--config", str(config), *argv], prog_name="clearinghouse", standalone_mode=False
            )
        except SystemExit as exc:
            if argv[0] != "health":
                raise RuntimeError(f"{' '.join(argv)} exited with {exc.code}") from None


def measured(
    store: Store, runs: int, action: Callable[[], None], prepare: Callable[[], None] = lambda: None
) -> tuple[Figure, list[Statement]]:
    """`action` run `runs` times under a probe, `prepare` before each (not measured)."""
    cpu, probe = [], Probe()
    for _ in range(runs):
        prepare()
        probe = Probe()
        with probe.running():
            action()
        cpu.append(probe.cpu * 1000)
    engine = store.app.engine
    work = (
        probe.vm_steps if engine.dialect.name == "sqlite" else replay(engine, probe.statements)[0]
    )
    return Figure(cpu, probe.queries, work), probe.statements


def processing(store: Store, period: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(spool a new report of team0000 for `period`, claim and process it as a worker
    thread does): a revision of a report the history holds."""
    app, counter = store.app, iter(range(10**6))

    def spool_one() -> None:
        report = REPORT.format(period=period, n=1000 + next(counter))
        raw = compose(
            store.team,
            report,
            signer=store.team_fpr,
            recipients=[app.identity.fingerprint],
            sender="cert@team0000.example",
            to=INTAKE,
        )
        spool_message(
            app.engine, raw, "smtp", envelope_from="cert@team0000.example", envelope_to=[INTAKE]
        )

    def process() -> None:
        claimed = claim_next(app.engine, "bench", 300, inline_bytes(app))
        if claimed is None:
            raise RuntimeError("nothing to claim")
        outcome = process_message(app, claimed.id, "bench", claimed)
        if outcome.state != "accepted":
            raise RuntimeError(f"message {claimed.id}: {outcome.state} {outcome.reason}")

    return spool_one, process


def database_bytes(engine: Engine) -> int:
    """What the tables and indexes take (SQLite: pages in use, after a checkpoint)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(
                connection.execute(
                    text(
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    )
                ).scalar_one()
            )
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = connection.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int((pages - free) * size)


def recent_message(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT max(id) FROM message")).scalar_one())


def measure(
    store: Store, args: argparse.Namespace, period: str
) -> tuple[dict[str, Figure], list[Statement], int]:
    """Every figure of one store; the statements each command ran; its size in bytes."""
    figures, statements = {}, []
    spool_one, process = processing(store, period)
    spool_one()
    process()  # once unmeasured: the first message compiles templates, starts gpg-agent
    figures["one message processed (claim to sealed receipt)"], ran = measured(
        store, args.runs, process, spool_one
    )
    statements += ran
    recent = recent_message(store.app.engine)
    for command in COMMANDS:
        name = command.replace("{period}", period)  # the same in every store
        argv = command.format(period=period, recent=recent).split()
        figures[name], ran = measured(store, args.runs, lambda a=argv: run_cli(store.config, a))
        statements += ran
        progress(f"measured {name}")
    return figures, statements, database_bytes(store.app.engine)


# --- the report ----------------------------------------------------------------------------


def print_report(
    lengths: list[int], results: dict[int, dict[str, Figure]], sizes: dict[int, int], database: str
) -> bool:
    first, last = lengths[0], lengths[-1]
    unit = "VM instructions" if database == "sqlite" else "buffers"
    print(f"\n{database}: growth from {first} to {last} year(s) of history (limit {LIMIT})")
    print(
        f"{'figure':<52} {'CPU ms ' + str(first) + 'y':>12} {str(last) + 'y':>12} "
        f"{'growth':>7}  {'queries':>9}  {unit + ' ' + str(first) + 'y / ' + str(last) + 'y':>28} "
        f"{'growth':>7}"
    )
    ok = True
    for name, a in results[first].items():
        b = results[last][name]
        cpu_growth, work_growth = b.median / a.median, (b.work / a.work if a.work else 1.0)
        ok &= cpu_growth <= LIMIT and work_growth <= LIMIT
        print(
            f"{name:<52} {a.median:>12.1f} {b.median:>12.1f} {cpu_growth:>7.2f}  "
            f"{a.queries:>4}/{b.queries:<4}  {a.work:>13} / {b.work:<12} {work_growth:>7.2f}"
        )
        print(f"{'':<52} {'(' + a.spread + ')':>12} {'(' + b.spread + ')':>12}")
    mib = {n: sizes[n] / 2**20 for n in lengths}
    per_year = (mib[last] / last) / (mib[first] / first)
    ok &= per_year <= LIMIT
    print(
        f"{'database size, MiB':<52} {mib[first]:>12.1f} {mib[last]:>12.1f} "
        f"{mib[last] / mib[first]:>7.2f}"
    )
    print(
        f"{'database size per year of data, MiB':<52} {mib[first] / first:>12.1f} "
        f"{mib[last] / last:>12.1f} {per_year:>7.2f}"
    )
    print("all within the limit" if ok else "SOME FIGURE GREW MORE THAN THE LIMIT")
    return ok


def write_plans(path: Path, store: Store, statements: list[Statement]) -> None:
    with path.open("w") as out:
        for sql, plan in plans(store.app.engine, statements):
            out.write(f"{sql}\n{plan}\n\n")
    progress(f"plans written to {path}")


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    install()  # before the first connection, so that every one is counted
    logging.disable(logging.INFO)  # the pipeline's line per message
    lengths = sorted(int(n) for n in args.years.split(","))
    now = datetime.now(UTC)
    period = last_period(now)
    root = Path(tempfile.mkdtemp(prefix="clearinghouse-years-"))
    results, sizes = {}, {}
    try:
        for years in lengths:
            progress(f"{years} year(s) of {args.teams} teams on {args.database}")
            store = make_store(root, years, args, now)
            try:
                results[years], statements, sizes[years] = measure(store, args, period)
                if args.plans is not None and years == lengths[-1]:
                    write_plans(args.plans, store, statements)
            finally:
                if not args.keep:
                    drop(store)
        ok = print_report(lengths, results, sizes, args.database)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
