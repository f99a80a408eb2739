"""How close the gateway runs to the cost of the cryptography it cannot avoid.

Sets up a gateway in a temporary directory (SQLite, or PostgreSQL with --database-url),
N teams with their own keys and M distinct signed+encrypted submissions, starts
`clearinghouse serve` on loopback at its default settings (or the [worker] options
given), and takes turns (--rounds) between:

- the gateway: a round's messages over SMTP from --senders concurrent clients, timed
  until every receipt is sealed in the outbox (then until delivered, so the next turn
  finds the gateway idle);
- the floor: bare gpg doing the same work (decrypt+verify each message, sign+encrypt the
  exact plaintext of each receipt) with 1, 2, 3 and 4 gpg processes at a time
  (bench/floor.py), with the options the gateway gives gpg to lower its cost
  (keys.gpg.COST_OPTIONS; --floor-gpg-defaults leaves them out). The gateway is
  compared with the best of them.

Then an open loop (bench/openloop.py): --open-messages more mails offered at 0.8 x the
best floor's rate, whatever the gateway does, and the time from each SMTP 250 to its
receipt sealed. Then, with --large K, the peak memory after K messages of almost 10 MiB.
And a reference line: the same cryptography in-process with Sequoia (pysequoia, the
`bench` extra), to show how far gpg's own cost is from the cryptography's.

With --runs N the whole run is repeated N times (each from a fresh set-up) and each
figure is printed as the median of the runs with their range. Not part of the test
suite: `python bench/throughput.py --help`.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import Figures, percentile, report
from bench.floor import Party, ciphertext, floor, sequoia_reference
from bench.openloop import offer
from bench.procstat import Machine, PssSampler, children, cpu_seconds, peak_rss, process_name
from bench.traffic import (
    HOST,
    INTAKE,
    Sent,
    Team,
    answers,
    make_mails,
    make_team,
    receipt_plaintexts,
    send_all,
    wait_for_deliveries,
    wait_for_receipts,
)
from gateway.app import App
from gateway.config import Config, config_from_mapping
from keys.gpg import COST_OPTIONS
from keys.identity import create_identity

FLOOR_WORKERS = (1, 2, 3, 4)
OFFERED_SHARE = 0.8  # the open loop offers this share of the best floor's rate
Mails = list[tuple[str, bytes]]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teams", type=int, default=20)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--senders", type=int, default=20, help="concurrent SMTP clients")
    p.add_argument("--workers", type=int, default=0, help="[worker] concurrency (0: default)")
    p.add_argument("--threads", type=int, default=0, help="[worker] threads (0: default)")
    p.add_argument("--gpg-nice", type=int, default=-1, help="[worker] gpg_nice (-1: default)")
    p.add_argument("--rounds", type=int, default=4, help="gateway and floor take turns")
    p.add_argument("--open-messages", type=int, default=-1,
                   help="mails offered in the open loop (default: --messages)")  # fmt: skip
    p.add_argument("--runs", type=int, default=1, help="whole runs; medians are printed")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                   help="postgresql: a fresh schema of the test database on 127.0.0.1:5432, "
                   "each run")  # fmt: skip
    p.add_argument("--database-url", default="", help="an empty database (instead of --database)")
    p.add_argument("--large", type=int, default=0, help="then K messages of almost 10 MiB")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--floor-gpg-defaults",
        action="store_true",
        help="the floor's gpg without the gateway's cost options (keys.gpg.COST_OPTIONS)",
    )
    args = p.parse_args(argv)
    if args.open_messages < 0:
        args.open_messages = args.messages
    return args


# --- the gateway ---------------------------------------------------------------------------


def gateway_config(home: Path, args: argparse.Namespace, smtp_port: int) -> Path:
    """The gateway's configuration: its defaults, but for the [worker] options given."""
    url = args.database_url or f"sqlite:///{home / 'clearinghouse.db'}"
    given = {"concurrency": args.workers > 0, "threads": args.threads > 0,
             "gpg_nice": args.gpg_nice >= 0}  # fmt: skip
    values = {"concurrency": args.workers, "threads": args.threads, "gpg_nice": args.gpg_nice}
    chosen = "".join(f"{key} = {values[key]}\n" for key, on in given.items() if on)
    text = (
        f'[clearinghouse]\nhome = "{home}"\ndatabase_url = "{url}"\n'
        f'[smtp]\nlisten = "{HOST}:{smtp_port}"\n'
        # Each sender connects from a loopback address of its own (bench/traffic.py), as
        # teams' mail servers would; the per-client quotas are not measured here.
        "max_bytes_per_client_per_hour = 0\nmax_messages_per_client_per_hour = 0\n"
        f"[worker]\n{chosen}"
        '[metrics]\nlisten = ""\n'
    )
    path = home.parent / "clearinghouse.toml"
    path.write_text(text)
    return path


def load(path: Path) -> Config:
    import tomllib

    return config_from_mapping(tomllib.loads(path.read_text()), str(path))


@contextmanager
def serving(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"]
    log = open(config.with_suffix(".log"), "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start; see {log.name}")
            time.sleep(0.05)
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def set_up(root: Path, args: argparse.Namespace) -> tuple[App, Path, int, list[Team]]:
    home, port = root / "var", free_port()
    home.mkdir(parents=True)
    config = gateway_config(home, args, port)
    app = App(load(config))
    app.initialise()
    create_identity(app.gpg, "Bench Clearinghouse", INTAKE)
    return app, config, port, [make_team(app, root, i) for i in range(args.teams)]


# --- the turns -----------------------------------------------------------------------------


@dataclass
class Side:
    """The gateway's rounds, or one floor's, added up."""

    machine: Machine
    seconds: float = 0.0
    own: float = 0.0  # CPU seconds: serve's own (gateway), the gpg processes' (floor)
    gpg: float = 0.0  # CPU seconds of serve's gpg children
    door: float = 0.0  # CPU seconds of the SMTP door process


@dataclass
class Turns:
    """Everything the alternating rounds measured."""

    gateway: Side
    floors: dict[int, Side]
    sent: list[Sent] = field(default_factory=list)


def gateway_round(
    app: App, port: int, senders: int, pids: tuple[int, list[int]], mails: Mails, side: Side,
    queued_before: int,
) -> list[Sent]:  # fmt: skip
    """Send one round over SMTP and wait for its receipts; add its figures to `side`."""
    serve, doors = pids
    before, doors_before = cpu_seconds(serve), sum(cpu_seconds(d)[0] for d in doors)
    with side.machine.measuring():
        start = time.perf_counter()
        sent = send_all(port, mails, senders)
        side.seconds += wait_for_receipts(app.engine, queued_before + len(mails)) - start
        wait_for_deliveries(app.engine, queued_before + len(mails))  # not in `seconds`
    own, gpg = (a - b for a, b in zip(cpu_seconds(serve), before, strict=True))
    side.own, side.gpg = side.own + own, side.gpg + gpg
    side.door += sum(cpu_seconds(d)[0] for d in doors) - doors_before
    return sent


def floor_rounds(app: App, teams: dict[str, Team], sent: list[Sent], mails: Mails,
                 floors: dict[int, Side], options: Sequence[str]) -> None:  # fmt: skip
    """Bare gpg over the same round's work, at each concurrency in turn."""
    receipts = receipt_plaintexts(app, teams, {s.message_id for s in sent})
    inputs = [ciphertext(raw) for _, raw in mails]
    home, signer = app.config.gnupg_home, app.identity.fingerprint
    for workers, side in floors.items():
        with side.machine.measuring():
            done = floor(home, signer, inputs, receipts, workers, options)
        side.seconds += done.seconds
        side.own += done.cpu


def floor_options(args: argparse.Namespace) -> Sequence[str]:
    """The floor runs gpg as the gateway does, unless asked for gpg's defaults."""
    return () if args.floor_gpg_defaults else COST_OPTIONS


def rounds(mails: Mails, count: int) -> list[Mails]:
    size = -(-len(mails) // max(1, count))
    return [mails[i : i + size] for i in range(0, len(mails), size)]


def run(root: Path, args: argparse.Namespace) -> Figures:
    """One whole run: the turns, the open loop, the memory, the Sequoia reference."""
    app, config, port, teams = set_up(root, args)
    mails = make_mails(app, teams, 0, args.messages)
    more = make_mails(app, teams, args.messages, args.open_messages)
    large = make_mails(app, teams, args.messages + args.open_messages, args.large, 6_300_000)
    home, by_email = app.config.gnupg_home, {t.email: t for t in teams}
    turns = Turns(Side(Machine(home)), {w: Side(Machine(home)) for w in FLOOR_WORKERS})
    options = floor_options(args)
    with serving(config, port) as server:
        pids = (server.pid, [c for c in children(server.pid) if "python" in process_name(c)])
        for chunk in rounds(mails, args.rounds):
            done = gateway_round(app, port, args.senders, pids, chunk, turns.gateway,
                                 len(turns.sent))  # fmt: skip
            floor_rounds(app, by_email, done, chunk, turns.floors, options)
            turns.sent += done
        found = figures(args, len(mails), turns)
        best = max(len(mails) / side.seconds for side in turns.floors.values())
        found |= open_loop(app, port, args, more, best * OFFERED_SHARE)
        found |= memory_figures(app, args, pids, large, port)
    found |= reference(app, teams, mails, turns.sent)
    app.engine.dispose()
    return found


def open_loop(app: App, port: int, args: argparse.Namespace, mails: Mails, rate: float) -> Figures:
    if not mails:
        return {}
    offered = offer(port, app.engine, mails, rate, args.senders)
    wait_for_deliveries(app.engine, args.messages + len(mails))
    seconds = [t * 1000 for t in offered.to_receipt()]
    late = [t * 1000 for t in offered.lateness]
    return {
        "open loop: offered rate, 0.8 x best floor (messages/s)": (rate,),
        "open loop: SMTP 250 to receipt sealed, p50 / p99 (ms)": (
            percentile(seconds, 0.5), percentile(seconds, 0.99)),
        "open loop: sends late against the schedule, p99 (ms)": (percentile(late, 0.99),),
    }  # fmt: skip


def memory_figures(
    app: App, args: argparse.Namespace, pids: tuple[int, list[int]], large: Mails, port: int
) -> Figures:
    serve, doors = pids
    found: Figures = {"peak RSS, serve / its door (MiB)": peak_rss(serve)}
    if not large:
        return found
    queued = args.messages + args.open_messages
    with PssSampler([serve, *doors]) as sampler:
        send_all(port, large, min(args.senders, 2))
        wait_for_receipts(app.engine, queued + len(large))
    found[f"peak RSS after {len(large)} large messages, serve / its door (MiB)"] = peak_rss(serve)
    found["peak PSS of serve and its door together, sampled (MiB)"] = (sampler.peak,)
    return found


def reference(app: App, teams: list[Team], mails: Mails, sent: list[Sent]) -> Figures:
    """Sequoia's CPU a message for the same decrypt+verify and sign+encrypt."""
    by_email = {t.email: t for t in teams}
    incoming = [(ciphertext(raw), Party(by_email[e].gpg.home, by_email[e].fingerprint))
                for e, raw in mails]  # fmt: skip
    receipts = receipt_plaintexts(app, by_email, {s.message_id for s in sent})
    gateway = Party(app.config.gnupg_home, app.identity.fingerprint)
    cpu = sequoia_reference(gateway, incoming, receipts)
    return {"reference only: Sequoia in-process, CPU a message (ms)": (cpu * 1000,)} if cpu else {}


def figures(args: argparse.Namespace, count: int, turns: Turns) -> Figures:
    gateway = turns.gateway
    rate = count / gateway.seconds
    floor_rates = {w: count / side.seconds for w, side in turns.floors.items()}
    best = max(floor_rates, key=lambda w: floor_rates[w])
    latencies = [s.latency * 1000 for s in turns.sent]
    per = 1000 / count
    return {
        "gateway (messages/s)": (rate,),
        "floor, bare gpg x1 / x2 / x3 / x4 (messages/s)": tuple(floor_rates.values()),
        "best floor: gpg processes at once": (best,),
        "ratio gateway / best floor": (rate / floor_rates[best],),
        "ratio gateway / floor x2": (rate / floor_rates[2],),
        "CPU a message: serve / its door / its gpg (ms)": (
            gateway.own * per, gateway.door * per, gateway.gpg * per),
        "CPU a message: the best floor's gpg (ms)": (turns.floors[best].own * per,),
        "CPU a message: gpg-agent, gateway / best floor (ms)": (
            gateway.machine.agent * per, turns.floors[best].machine.agent * per),
        "CPU a message: the bench's SMTP senders (ms)": (gateway.machine.bench * per,),
        "CPU a message: the PostgreSQL server (ms)": (gateway.machine.postgres * per,),
        "machine CPU busy: gateway / best floor (%)": (
            gateway.machine.busy * 100, turns.floors[best].machine.busy * 100),
        f"SMTP accept at {args.senders} senders, p50 / p99 (ms)": (
            percentile(latencies, 0.5), percentile(latencies, 0.99)),
    }  # fmt: skip


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database_for(args: argparse.Namespace) -> Iterator[str]:
    """The database of one run: as given, SQLite (""), or a fresh PostgreSQL schema."""
    if args.database_url or args.database == "sqlite":
        yield args.database_url
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def stop_agents(root: Path) -> None:
    for keyring in root.rglob("pubring.kbx"):
        subprocess.run(["gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent"],
                       check=False, capture_output=True)  # fmt: skip


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.database_url and args.runs > 1:
        print("--runs with --database-url: each run needs an empty database; use --database",
              file=sys.stderr)  # fmt: skip
        return 2
    found = []
    for index in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="clearinghouse-bench-"))
        try:
            with database_for(args) as url:
                found.append(run(root, argparse.Namespace(**{**vars(args), "database_url": url})))
            if args.runs > 1:
                print(f"run {index + 1} of {args.runs} done", file=sys.stderr, flush=True)
        finally:
            stop_agents(root)
            if args.keep:
                print(f"kept {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    report(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
