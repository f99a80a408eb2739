"""Where the worker's own CPU goes, message by message: cProfile over one thread.

Sets up a gateway in a temporary directory (SQLite, or a fresh PostgreSQL schema with
--database postgresql), spools --messages distinct submissions of --teams teams
(as the SMTP door stores them), then processes them in this process with one worker
thread (`Worker.run_once`) under cProfile, and delivers the receipts (`flush`). Prints
this process's CPU a message (gpg's own CPU is its children's, not in it), the
statements a message runs, and the functions with the most own time and the most
calls, per message. Counts, not wall time: they hold on a busy machine.
Not part of the test suite: `python bench/worker_profile.py --help`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.probe import Probe
from bench.throughput import database_for, load, stop_agents
from bench.traffic import INTAKE, make_mails, make_team
from gateway.app import App
from gateway.service import worker_for
from keys.identity import create_identity
from store.spool import spool_message


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teams", type=int, default=10)
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--top", type=int, default=25, help="functions listed")
    p.add_argument("--dump", type=Path, default=None, help="write the raw profile here")
    p.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="only the CPU a message, without cProfile's own cost in it",
    )
    args = p.parse_args(argv)
    args.database_url = ""
    return args


def gateway(root: Path, url: str) -> App:
    home = root / "var"
    home.mkdir(parents=True)
    config = root / "clearinghouse.toml"
    database = url or f"sqlite:///{home / 'clearinghouse.db'}"
    config.write_text(f'[clearinghouse]\nhome = "{home}"\ndatabase_url = "{database}"\n')
    app = App(load(config))
    app.initialise()
    create_identity(app.gpg, "Bench Clearinghouse", INTAKE)
    return app


def profile(root: Path, args: argparse.Namespace, url: str) -> None:
    app = gateway(root, url)
    teams = [make_team(app, root, i) for i in range(args.teams)]
    for sender, raw in make_mails(app, teams, 0, args.messages):
        spool_message(app.engine, raw, "smtp", envelope_from=sender, envelope_to=[INTAKE])
    worker = worker_for(app)
    worker.threads = 1
    worker.run_once(limit=1)  # warm: imports, pools, templates, the agent
    worker.flush()
    count = args.messages - 1
    profiler, probe = cProfile.Profile(time.process_time), Probe()  # CPU, not waits
    before = os.times()
    with probe.running():
        if args.profile:
            profiler.enable()
        done = worker.run_once()
        worker.flush()
        profiler.disable()
    after = os.times()
    app.engine.dispose()
    if sum(done.values()) != count:
        raise RuntimeError(f"processed {done}, expected {count}")
    gpg = after.children_user + after.children_system
    gpg -= before.children_user + before.children_system
    print(f"{count} messages ({done}), {args.database}, one worker thread")
    print(f"CPU a message: this process {probe.cpu / count * 1000:.2f} ms, "
          f"its gpg children {gpg / count * 1000:.2f} ms")  # fmt: skip
    print(f"statements a message: {probe.queries / count:.1f}")
    if not args.profile:
        return
    if args.dump is not None:
        profiler.dump_stats(args.dump)
    for order in ("tottime", "ncalls"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(args.top)
        print(f"\n--- by {order} (totals for {count} messages) ---")
        print(out.getvalue().split("\n", 6)[-1])


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.disable(logging.INFO)
    root = Path(tempfile.mkdtemp(prefix="clearinghouse-profile-"))
    try:
        with database_for(args) as url:
            profile(root, args, url)
    finally:
        stop_agents(root)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
