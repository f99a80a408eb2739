"""How close the gateway runs to the cost of the cryptography it cannot avoid.

Sets up a gateway in a temporary directory (SQLite, or PostgreSQL with --database-url),
N teams with their own keys and M distinct signed+encrypted submissions, starts
`clearinghouse serve` on loopback, sends everything over SMTP from concurrent clients
and measures until every receipt is in the outbox. In the same run, the floor: the same
messages decrypted+verified, and the same receipts (their exact plaintext)
signed+encrypted, by bare gpg processes at the gateway's concurrency. The two take
turns (--rounds): each round's messages go through the gateway, then through the
floor, so that both sides are measured on the machine as it is at that moment; the
floor's round starts once the gateway has delivered the round's receipts.

Prints messages/s for both and their ratio, p50/p99 SMTP accept latency (MAIL FROM to
the 250 after DATA), p50/p99 time to receipt (the message stored to its receipt queued),
and the serve process's peak RSS; with --large K, also the peak RSS after K messages of
almost 10 MiB each (a report after megabytes of comment lines: the report body is capped
at 1 MiB, so each is rejected, with a signed+encrypted reply, after being decrypted,
verified and parsed like any other). Not part of the test suite:
`python bench/throughput.py --help`.
"""

from __future__ import annotations

import argparse
import email
import os
import queue
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine
from sqlmodel import col, select

from gateway.app import App
from gateway.config import Config, config_from_mapping
from keys.compose import compose, open_sealed
from keys.gpg import GnuPG
from keys.identity import create_identity
from store.db import open_session
from store.models import Message, OutboxEntry

INTAKE = "stats@clearinghouse.example"
HOST = "127.0.0.1"
T = TypeVar("T")

REPORT = """\
Report: type1
Period: {period}
Requests: {n}
Incidents-Opened: 311
Incidents-Closed: 298
Inbound-Communication: 1650
Outbound-Communication: 1422
Organisations-Involved: 187
Hours-Spent: 940.5
"""


@dataclass(frozen=True)
class Team:
    handle: str
    email: str
    gpg: GnuPG
    fingerprint: str


@dataclass(frozen=True)
class Sent:
    message_id: int
    latency: float  # seconds from MAIL FROM to the 250 after DATA


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teams", type=int, default=20)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--senders", type=int, default=20, help="concurrent SMTP clients")
    p.add_argument("--workers", type=int, default=2, help="[worker] concurrency (and floor)")
    p.add_argument("--threads", type=int, default=0, help="[worker] threads (0: the default)")
    p.add_argument("--gpg-nice", type=int, default=10, help="[worker] gpg_nice")
    p.add_argument("--rounds", type=int, default=4, help="gateway and floor take turns")
    p.add_argument("--database-url", default="", help="default: SQLite in the temp dir")
    p.add_argument("--large", type=int, default=0, help="then K messages of almost 10 MiB")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p.parse_args(argv)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def parallel(count: int, work: Callable[[int], T], items: int) -> list[T]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(items)))


# --- set-up --------------------------------------------------------------------------------


def gateway_config(home: Path, args: argparse.Namespace, smtp_port: int) -> Path:
    url = args.database_url or f"sqlite:///{home / 'clearinghouse.db'}"
    text = (
        f'[clearinghouse]\nhome = "{home}"\ndatabase_url = "{url}"\n'
        f'[smtp]\nlisten = "{HOST}:{smtp_port}"\n'
        # One sending address for everything: the per-client quotas are not measured here.
        "max_bytes_per_client_per_hour = 0\nmax_messages_per_client_per_hour = 0\n"
        f"[worker]\nconcurrency = {args.workers}\nthreads = {args.threads}\n"
        f"gpg_nice = {args.gpg_nice}\n"
        '[metrics]\nlisten = ""\n'
    )
    path = home.parent / "clearinghouse.toml"
    path.write_text(text)
    return path


def load(path: Path) -> Config:
    import tomllib

    return config_from_mapping(tomllib.loads(path.read_text()), str(path))


def make_team(app: App, root: Path, index: int) -> Team:
    handle = f"team{index:04d}"
    address = f"cert@{handle}.example"
    gpg = GnuPG(root / "teams" / handle)
    fpr = gpg.generate_key(f"CERT {handle}", address)
    gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    app.registry.add_team(handle, name=handle.upper(), email=address)
    app.registry.import_keys(handle, gpg.export_public(fpr).encode())
    return Team(handle, address, gpg, fpr)


def submission(team: Team, gateway_fpr: str, n: int, padding: int = 0) -> bytes:
    report = REPORT.format(period="2026-10", n=n)
    if padding:  # comment lines, ignored by the parser; random hex, which gpg halves
        blob = os.urandom(padding).hex()
        report = "".join(f"# {blob[i : i + 76]}\n" for i in range(0, len(blob), 76)) + report
    return compose(
        team.gpg, report, signer=team.fingerprint, recipients=[gateway_fpr],
        sender=team.email, to=INTAKE,
    )  # fmt: skip


# --- the gateway ---------------------------------------------------------------------------


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


def answers(port: int) -> bool:
    try:
        smtplib.SMTP(HOST, port, timeout=1).quit()
    except OSError:
        return False
    return True


def peak_rss(pid: int) -> str:
    """Peak RSS of `serve` and of its SMTP door process, which holds each DATA buffer."""
    doors = [child for child in children(pid) if "python" in process_name(child)]
    door = sum(peak_rss_mib(child) for child in doors)
    return f"{peak_rss_mib(pid):.0f} + {door:.0f} (door) = {peak_rss_mib(pid) + door:.0f}"


class PssSampler:
    """The peak of the processes' summed PSS, sampled every 20 ms while in use.

    Peak RSS overcounts two processes: the pages they share (the interpreter, libraries)
    are in both. PSS divides each shared page among its sharers, so the sum is what the
    processes together hold. The kernel keeps no peak PSS; a sample may miss a peak
    shorter than 20 ms.

    gpg's input and output are memory files (memfd) that serve writes and reads without
    mapping them: their pages are in no process's PSS, so their sizes are added (each
    file once; gpg's stdin, stdout and stderr are the same files).
    """

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids, self.peak = list(pids), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            held = sum(pss_mib(pid) for pid in self.pids) + memory_files_mib(self.pids)
            self.peak = max(self.peak, held)


def memory_files_mib(pids: Sequence[int]) -> float:
    """The size of the memfd files that the processes hold open, each counted once."""
    sizes: dict[tuple[int, int], int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
        for fd in fds:
            try:
                if os.readlink(fd).startswith("/memfd:"):
                    st = fd.stat()
                    sizes[(st.st_dev, st.st_ino)] = st.st_size
            except OSError:  # closed meanwhile
                continue
    return sum(sizes.values()) / 2**20


def pss_mib(pid: int) -> float:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    return int(match[1]) / 1024 if match else 0.0


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) / 1024 if match else float("nan")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a process itself and of its waited-for children (gpg), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


@dataclass
class Machine:
    """CPU that neither side's own figures hold: the whole machine, gpg-agent, the bench.

    gpg-agent does every secret-key operation for both the gateway and the floor, as a
    daemon of the gateway's GnuPG home: no process's child, so no figure above counts it.
    """

    home: Path
    busy_jiffies: int = 0  # all cores' time not idle, and all of it, while measuring
    all_jiffies: int = 0
    agent: float = 0.0  # seconds of gpg-agent CPU
    bench: float = 0.0  # seconds of this process's CPU (the SMTP senders, the polling)
    postgres: float = 0.0  # seconds of the PostgreSQL server's CPU (all its processes)

    @property
    def busy(self) -> float:
        return self.busy_jiffies / self.all_jiffies if self.all_jiffies else 0.0

    @contextmanager
    def measuring(self) -> Iterator[Machine]:
        """Add what happens in the block to the figures (each round adds its own)."""
        machine, agent, bench = machine_jiffies(), agent_seconds(self.home), own_seconds()
        postgres = postgres_seconds()
        yield self
        busy, total = (b - a for a, b in zip(machine, machine_jiffies(), strict=True))
        self.busy_jiffies += busy
        self.all_jiffies += total
        self.agent += agent_seconds(self.home) - agent
        self.bench += own_seconds() - bench
        self.postgres += postgres_seconds() - postgres


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def agent_seconds(home: Path) -> float:
    """CPU seconds of the gpg-agent serving `home` (0 if none runs yet)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and str(home).encode() in argv:
            return sum(cpu_seconds(int(proc.name)))
    return 0.0


def postgres_seconds() -> float:
    """CPU seconds of the PostgreSQL server: its processes, and those it has reaped.

    Each process's own time and its waited-for children's: a backend that ended is in
    the postmaster's children time, a running one in its own.
    """
    total = 0.0
    for pid in pids_named("postgres"):
        try:
            total += sum(cpu_seconds(pid))
        except FileNotFoundError:  # ended between the listing and the reading
            continue
    return total


def pids_named(name: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if process_name(int(p.name)) == name]


def own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def send_all(port: int, mails: list[tuple[str, bytes]], senders: int) -> list[Sent]:
    """Every mail over SMTP, `senders` connections at once; each one's accept latency."""
    work: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    for mail in mails:
        work.put(mail)
    done: list[Sent] = []
    lock = threading.Lock()

    def sender(_: int) -> None:
        with smtplib.SMTP(HOST, port, timeout=120) as smtp:
            smtp.ehlo("bench.example")
            while True:
                try:
                    sender_address, raw = work.get_nowait()
                except queue.Empty:
                    return
                sent = send_one(smtp, sender_address, raw)
                with lock:
                    done.append(sent)

    parallel(senders, sender, senders)
    return done


def send_one(smtp: smtplib.SMTP, sender: str, raw: bytes) -> Sent:
    start = time.perf_counter()
    smtp.mail(sender)
    smtp.rcpt(INTAKE)
    code, reply = smtp.data(raw)
    latency = time.perf_counter() - start
    match = re.search(rb"Queued as (\d+)", reply)
    if code != 250 or match is None:
        raise RuntimeError(f"not accepted: {code} {reply!r}")
    return Sent(int(match[1]), latency)


# Sealed receipts, and any other reply (a large message's rejection), in the outbox.
REPLIES_QUEUED = "SELECT count(*) FROM outboxentry WHERE state <> 'unsealed'"
REPLIES_DELIVERED = "SELECT count(*) FROM outboxentry WHERE state = 'sent'"


def wait_for_receipts(engine: Engine, expected: int, timeout: float = 3600) -> float:
    """When `expected` replies are queued, looked for every 20 ms."""
    return _wait_for_count(engine, REPLIES_QUEUED, expected, "queued", timeout)


def wait_for_deliveries(engine: Engine, expected: int, timeout: float = 3600) -> float:
    """When `expected` replies are delivered (to the maildir), looked for every 20 ms.

    A round ends here, not when its receipts are queued: the gateway's delivery thread
    would otherwise go on writing them out (two fsyncs each) while the floor runs, slowing
    the floor with work that is the gateway's, and leaving that work out of serve's CPU.
    """
    return _wait_for_count(engine, REPLIES_DELIVERED, expected, "delivered", timeout)


def _wait_for_count(engine: Engine, query: str, expected: int, what: str, timeout: float) -> float:
    """When `query` counts `expected`, looked for every 20 ms.

    On a plain DB-API connection: through a SQLAlchemy session each look cost 1 ms of
    the bench's CPU (0.03 ms plain), a twentieth of a core taken from the gateway.
    """
    deadline = time.monotonic() + timeout
    connection = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            connection.autocommit = True  # each look sees the latest commit, holds nothing
        cursor = connection.cursor()
        while True:
            cursor.execute(query)
            counted = int(cursor.fetchone()[0])
            if counted >= expected:
                return time.perf_counter()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {counted} of {expected} receipts {what} after {timeout} s"
                )
            time.sleep(0.02)
    finally:
        connection.close()


def times_to_receipt(engine: Engine, ids: set[int]) -> list[float]:
    """For each message: from stored (its SMTP 250) to its receipt queued in the outbox."""
    with open_session(engine) as s:
        query = (
            select(Message.id, Message.received_at, OutboxEntry.created_at)
            .join(OutboxEntry, col(OutboxEntry.message_id) == col(Message.id))
            .where(OutboxEntry.kind == "receipt")
        )
        rows = s.exec(query).all()
    return [(queued - received).total_seconds() for mid, received, queued in rows if mid in ids]


# --- the floor -----------------------------------------------------------------------------


def gpg_argv(home: Path, *args: str) -> list[str]:
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2"]
    return [*base, "--trust-model", "always", *args]


def ciphertext(raw: bytes) -> bytes:
    parts = [p for p in email.message_from_bytes(raw).walk()]
    payload = [p for p in parts if p.get_content_type() == "application/octet-stream"]
    data = payload[0].get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def floor(
    app: App, incoming: list[bytes], receipts: list[tuple[bytes, str]], workers: int
) -> float:
    """Seconds for bare gpg to decrypt+verify every message and sign+encrypt every receipt."""
    home, signer = app.config.gnupg_home, app.identity.fingerprint
    inputs = [ciphertext(raw) for raw in incoming]

    def one(index: int) -> None:
        subprocess.run(gpg_argv(home, "--decrypt"), input=inputs[index], capture_output=True,
                       check=True)  # fmt: skip
        plaintext, recipient = receipts[index]
        sign = gpg_argv(home, "--armor", "--sign", "--encrypt", "--local-user", signer,
                        "--recipient", recipient)  # fmt: skip
        subprocess.run(sign, input=plaintext, capture_output=True, check=True)

    start = time.perf_counter()
    parallel(workers, one, len(inputs))
    return time.perf_counter() - start


def receipt_plaintexts(app: App, teams: dict[str, Team], ids: set[int]) -> list[tuple[bytes, str]]:
    """What the gateway signed and encrypted for each receipt, and for whom."""
    with open_session(app.engine) as s:
        entries = s.exec(select(OutboxEntry).where(OutboxEntry.kind == "receipt")).all()
    found = []
    for entry in (e for e in entries if e.message_id in ids):
        team = teams[entry.recipient]
        found.append((open_sealed(team.gpg, entry.raw).data, team.fingerprint))
    return found


# --- the run -------------------------------------------------------------------------------


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


def make_mails(
    app: App, teams: list[Team], first: int, count: int, padding: int = 0
) -> list[tuple[str, bytes]]:
    """`count` distinct submissions, numbered from `first`, round-robin over the teams."""
    fpr = app.identity.fingerprint

    def one(i: int) -> tuple[str, bytes]:
        team = teams[(first + i) % len(teams)]
        return team.email, submission(team, fpr, first + i, padding)

    return parallel(os.cpu_count() or 2, one, count)


def measure_gateway(
    app: App, port: int, senders: int, mails: list[tuple[str, bytes]], queued_before: int
) -> tuple[float, list[Sent]]:
    """Seconds from the first send until every mail's receipt is queued; what was sent."""
    start = time.perf_counter()
    sent = send_all(port, mails, senders)
    return wait_for_receipts(app.engine, queued_before + len(mails)) - start, sent


def report(figures: dict[str, str]) -> None:
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")


@dataclass
class Side:
    """The gateway's rounds, or the floor's, added up."""

    machine: Machine
    seconds: float = 0.0
    own: float = 0.0  # CPU seconds: serve's own (gateway), the gpg processes' (floor)
    gpg: float = 0.0  # CPU seconds of serve's gpg children
    door: float = 0.0  # CPU seconds of the SMTP door process


def per_message(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:.1f}"


def gateway_round(
    app: App, port: int, args: argparse.Namespace, pids: tuple[int, list[int]],
    mails: list[tuple[str, bytes]], queued_before: int, side: Side,
) -> list[Sent]:  # fmt: skip
    """Send one round over SMTP and wait for its receipts; add its figures to `side`."""
    serve, doors = pids
    before, doors_before = cpu_seconds(serve), sum(cpu_seconds(d)[0] for d in doors)
    with side.machine.measuring():
        seconds, sent = measure_gateway(app, port, args.senders, mails, queued_before)
        wait_for_deliveries(app.engine, queued_before + len(mails))  # not in `seconds`
    own, gpg = (a - b for a, b in zip(cpu_seconds(serve), before, strict=True))
    side.seconds += seconds
    side.own, side.gpg = side.own + own, side.gpg + gpg
    side.door += sum(cpu_seconds(d)[0] for d in doors) - doors_before
    return sent


def floor_round(
    app: App, teams: dict[str, Team], sent: list[Sent], mails: list[tuple[str, bytes]],
    workers: int, side: Side,
) -> None:  # fmt: skip
    """Bare gpg over the same round's messages and receipts; add its figures to `side`."""
    plaintexts = receipt_plaintexts(app, teams, {s.message_id for s in sent})
    before = os.times()
    with side.machine.measuring():
        side.seconds += floor(app, [raw for _, raw in mails], plaintexts, workers)
    after = os.times()
    side.own += after.children_user - before.children_user
    side.own += after.children_system - before.children_system


def rounds(mails: list[tuple[str, bytes]], count: int) -> list[list[tuple[str, bytes]]]:
    size = -(-len(mails) // max(1, count))
    return [mails[i : i + size] for i in range(0, len(mails), size)]


def run(root: Path, args: argparse.Namespace) -> dict[str, str]:
    """The gateway and the floor in alternating rounds over the same messages.

    The floor of this machine moves between runs (bare gpg: 105 to 158 messages/s on
    the same day); measured round by round right after the gateway's, both sides see
    the same machine.
    """
    app, config, port, teams = set_up(root, args)
    mails = make_mails(app, teams, 0, args.messages)
    large = make_mails(app, teams, args.messages, args.large, padding=6_300_000)
    home, by_email = app.config.gnupg_home, {t.email: t for t in teams}
    gateway, ground = Side(Machine(home)), Side(Machine(home))
    sent: list[Sent] = []
    turns = rounds(mails, args.rounds)
    with serving(config, port) as server:
        pids = (server.pid, [c for c in children(server.pid) if "python" in process_name(c)])
        for chunk in turns:
            done = gateway_round(app, port, args, pids, chunk, len(sent), gateway)
            floor_round(app, by_email, done, chunk, args.workers, ground)
            sent += done
        memory = memory_figures(app, args, port, pids, large, len(mails))
    ids = {s.message_id for s in sent}
    to_receipt = [t * 1000 for t in times_to_receipt(app.engine, ids)]
    app.engine.dispose()
    latencies = [s.latency * 1000 for s in sent]
    counts = (len(teams), len(mails), len(turns))
    return figures(args, counts, gateway, ground, latencies, to_receipt) | memory


def memory_figures(
    app: App, args: argparse.Namespace, port: int, pids: tuple[int, list[int]],
    large: list[tuple[str, bytes]], queued_before: int,
) -> dict[str, str]:  # fmt: skip
    serve, doors = pids
    found = {"peak RSS, serve + its door (MiB)": peak_rss(serve)}
    if not large:
        return found
    size = max(len(raw) for _, raw in large) / 2**20
    with PssSampler([serve, *doors]) as sampler:
        measure_gateway(app, port, min(args.senders, args.workers), large, queued_before)
    found[f"peak RSS after {len(large)} x {size:.1f} MiB (MiB)"] = peak_rss(serve)
    found["peak PSS of serve and its door together, sampled (MiB)"] = f"{sampler.peak:.0f}"
    return found


def figures(
    args: argparse.Namespace, counts: tuple[int, int, int], gateway: Side, ground: Side,
    latencies: list[float], to_receipt: list[float],
) -> dict[str, str]:  # fmt: skip
    teams, count, turns = counts
    gateway_rate, floor_rate = count / gateway.seconds, count / ground.seconds
    both = (gateway.machine, ground.machine)
    return {
        "messages": f"{count} from {teams} teams, {args.senders} SMTP senders, {turns} rounds",
        "gateway (messages/s)": f"{gateway_rate:.1f}",
        f"floor, bare gpg x{args.workers} (messages/s)": f"{floor_rate:.1f}",
        "ratio gateway / floor": f"{gateway_rate / floor_rate:.2f}",
        "CPU per message: serve / its door / its gpg (ms)": " / ".join(
            per_message(cpu, count) for cpu in (gateway.own, gateway.door, gateway.gpg)
        ),
        "CPU per message: floor's gpg (ms)": per_message(ground.own, count),
        "CPU per message: gpg-agent, gateway / floor (ms)": " / ".join(
            per_message(m.agent, count) for m in both
        ),
        "CPU per message: the bench's SMTP senders (ms)": per_message(gateway.machine.bench, count),
        "CPU per message: the PostgreSQL server (ms)": per_message(gateway.machine.postgres, count),
        "machine CPU busy: gateway / floor (%)": " / ".join(f"{m.busy * 100:.0f}" for m in both),
        "SMTP accept p50 / p99 (ms)": f"{percentile(latencies, 0.5):.1f} / "
        f"{percentile(latencies, 0.99):.1f}",
        "time to receipt p50 / p99 (ms)": f"{percentile(to_receipt, 0.5):.0f} / "
        f"{percentile(to_receipt, 0.99):.0f}",
    }


def stop_agents(root: Path) -> None:
    for keyring in root.rglob("pubring.kbx"):
        subprocess.run(["gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent"],
                       check=False, capture_output=True)  # fmt: skip


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="clearinghouse-bench-"))
    try:
        report(run(root, args))
    finally:
        stop_agents(root)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
