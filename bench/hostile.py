"""What hostile load costs a well-behaved team: its worst delay, and the data directory's
growth per hour of attack, for each load of issue 18.

Sets up a gateway in a temporary directory (SQLite, or PostgreSQL with --database-url),
a well-behaved team, a victim team and an attacker's keyring, and starts `clearinghouse
serve` on loopback. Then, phase by phase, the team sends a report every --interval
seconds for --seconds seconds (each must be accepted; its delay is the time from the
start of its SMTP dialogue to its acceptance in the database) while the attacker sends
one of the loads from other loopback addresses:

  none         no attacker: the baseline
  pkesk-flood  messages of random PKESK packets for the gateway's subkey (--flood-bytes)
  nested       the same flood inside an encryption layer (gpg meets it: the time limit)
  connections  --connections idle connections, each sending NOOP every few seconds
  replies      a victim team's clearsigned text, rebuilt as multipart/signed, encrypted
               to the gateway by the attacker, again and again (replies queued counted)
  junk         unencrypted messages of --junk-bytes (the per-client quota answers 452)
  headers      messages of --header-lines header lines (552)

Prints, per load: the team's worst and median delay next to the baseline's, the
attacker's messages sent and refused, replies queued to the victim, and the data
directory's growth (the database on PostgreSQL) and the raw mail stored, extrapolated
to an hour of attack, beside the bound the per-client quota puts on an hour (the
attacker's addresses times --quota; a phase of seconds does not reach it).
Not part of the test suite: `python bench/hostile.py --help`.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from bench.traffic import answers
from gateway.app import App
from gateway.config import config_from_mapping
from keys.compose import compose
from keys.gpg import GnuPG
from keys.identity import create_identity
from keys.packets import split_first
from keys.wrap import encrypted_envelope

INTAKE = "stats@clearinghouse.example"
HOST = "127.0.0.1"
LOADS = ("none", "pkesk-flood", "nested", "connections", "replies", "junk", "headers")
REPORT = "Report: type1\nPeriod: 2026-10\nRequests: {n}\nIncidents-Opened: 3\n" + "".join(
    f"{k}: 1\n"
    for k in (
        "Incidents-Closed",
        "Inbound-Communication",
        "Outbound-Communication",
        "Organisations-Involved",
        "Hours-Spent",
    )
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--loads", default=",".join(LOADS), help="comma-separated, of: " + ", ".join(LOADS)
    )
    p.add_argument("--seconds", type=float, default=8, help="length of each phase")
    p.add_argument("--interval", type=float, default=0.5, help="between the team's reports")
    p.add_argument("--flood-bytes", type=int, default=400_000, help="full size: 7400000")
    p.add_argument("--nested-packets", type=int, default=3000, help="full size: 76000")
    p.add_argument("--connections", type=int, default=40, help="full size: 1100")
    p.add_argument("--junk-bytes", type=int, default=1_000_000, help="full size: 10000000")
    p.add_argument("--header-lines", type=int, default=200_000, help="full size: 1900000")
    p.add_argument("--gpg-timeout", type=int, default=10, help="[limits] gpg_timeout_seconds")
    p.add_argument(
        "--quota", type=int, default=104857600, help="[smtp] max_bytes_per_client_per_hour"
    )
    p.add_argument("--database-url", default="", help="default: SQLite in the temp dir")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p.parse_args(argv)


# --- set-up --------------------------------------------------------------------------------


@dataclass
class Client:
    handle: str
    email: str
    gpg: GnuPG
    fingerprint: str


@dataclass
class World:
    root: Path
    app: App
    config: Path
    port: int
    good: Client
    victim: Client
    attacker: Client
    key_id: bytes


def set_up(root: Path, args: argparse.Namespace) -> World:
    home, port = root / "var", free_port()
    url = args.database_url or f"sqlite:///{home / 'clearinghouse.db'}"
    toml = (
        f'[clearinghouse]\nhome = "{home}"\ndatabase_url = "{url}"\n'
        f'[smtp]\nlisten = "{HOST}:{port}"\nmax_bytes_per_client_per_hour = {args.quota}\n'
        f'[limits]\ngpg_timeout_seconds = {args.gpg_timeout}\n[metrics]\nlisten = ""\n'
    )
    config = root / "clearinghouse.toml"
    config.write_text(toml)
    app = App(config_from_mapping(tomllib.loads(toml), str(config)))
    app.initialise()
    create_identity(app.gpg, "Bench Clearinghouse", INTAKE)
    good, victim = (make_team(app, root, name) for name in ("good", "victim"))
    attacker = Client("mallory", "mallory@evil.example", GnuPG(root / "mallory"), "")
    attacker.gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    details = app.gpg.details(app.identity.fingerprint)
    if details is None:
        raise RuntimeError("the gateway key is not in its keyring")
    [sub] = [s for s in details.subkeys if "e" in s.capabilities]
    return World(
        root, app, config, port, good, victim, attacker, bytes.fromhex(sub.fingerprint[-16:])
    )


def make_team(app: App, root: Path, handle: str) -> Client:
    address = f"cert@{handle}.example"
    gpg = GnuPG(root / handle)
    fpr = gpg.generate_key(f"CERT {handle}", address)
    gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    app.registry.add_team(handle, name=handle.upper(), email=address)
    app.registry.import_keys(handle, gpg.export_public(fpr).encode())
    return Client(handle, address, gpg, fpr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(world: World) -> Iterator[None]:
    argv = [sys.executable, "-m", "gateway.cli", "--config", str(world.config), "serve"]
    log = open(world.root / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not answers(world.port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start; see {log.name}")
            time.sleep(0.05)
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        log.close()


# --- what the attacker sends ----------------------------------------------------------------


def gpg_run(home: Path, *args: str, data: bytes) -> bytes:
    argv = ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always", *args]
    return subprocess.run(argv, input=data, capture_output=True, check=True).stdout


def pkesk(key_id: bytes) -> bytes:
    body = bytes([3]) + key_id + bytes([18, 1, 7, 0x40]) + os.urandom(32) + bytes([48])
    body += os.urandom(48)
    return bytes([0xC1, len(body)]) + body


def flood_packets(world: World, size: int) -> bytes:
    tail = gpg_run(
        world.attacker.gpg.home, "--recipient", world.app.identity.fingerprint, "--encrypt",
        data=b"x",
    )  # fmt: skip
    # Around the message's own key packet: gpg 2.2 tries the packets in order, gpg 2.4
    # gathers them and tries the last one first; either way half come before it.
    count = max(2, (size - len(tail)) // len(pkesk(world.key_id)))
    first, rest = split_first(tail)
    junk = [pkesk(world.key_id) for _ in range(count)]
    return b"".join(junk[: count // 2]) + first + b"".join(junk[count // 2 :]) + rest


def binary_envelope(sender: str, packets: bytes) -> bytes:
    encoded = base64.encodebytes(packets).replace(b"\n", b"\r\n")
    head = (
        f"From: {sender}\r\nTo: {INTAKE}\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        ' boundary="enc"\r\n\r\n--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\n'
        "Version: 1\r\n\r\n--enc\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode() + encoded + b"\r\n--enc--\r\n"


def nested(world: World, packets: int) -> bytes:
    inner = flood_packets(world, packets * len(pkesk(world.key_id)))
    args = ["--no-literal", "--compress-algo", "none", "--recipient"]
    outer = gpg_run(
        world.attacker.gpg.home, *args, world.app.identity.fingerprint, "--encrypt", data=inner
    )
    return binary_envelope(world.attacker.email, outer)


def rebuilt_clearsigned(world: World) -> Callable[[], bytes]:
    """A new ciphertext each call of the victim's one clearsigned text, rebuilt."""
    victim = world.victim
    signed = gpg_run(
        victim.gpg.home, "--local-user", victim.fingerprint, "--clearsign",
        data=b"Dear colleagues,\nour annual report is out.",
    ).decode()  # fmt: skip
    body = signed.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    body = re.sub(r"(?m)^- ", "", body).replace("\n", "\r\n")
    signature = signed[signed.index("-----BEGIN PGP SIGNATURE-----") :].replace("\n", "\r\n")
    entity = (
        'Content-Type: multipart/signed; protocol="application/pgp-signature";'
        ' micalg=pgp-sha512; boundary="sig"\r\n\r\n--sig\r\n'
        f"{body}\r\n--sig\r\nContent-Type: application/pgp-signature\r\n\r\n"
        f"{signature}\r\n--sig--\r\n"
    ).encode()

    def one() -> bytes:
        home, gw = world.attacker.gpg.home, world.app.identity.fingerprint
        armored = gpg_run(home, "--armor", "--recipient", gw, "--encrypt", data=entity)
        return encrypted_envelope([("From", victim.email), ("To", INTAKE)], armored.decode())

    return one


def junk(size: int) -> bytes:
    head = f"From: x@junk.example\r\nTo: {INTAKE}\r\nSubject: junk\r\n\r\n".encode()
    return head + (b"j" * 78 + b"\r\n") * max(1, (size - len(head)) // 80)


def header_heavy(lines: int) -> bytes:
    return b"A:b\r\n" * lines + b"From: x@y.example\r\n\r\nbody\r\n"


# --- the attacker's side -------------------------------------------------------------------


@dataclass
class Attack:
    sent: int = 0
    refused: int = 0
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    addresses: int = 0  # the client addresses it sends mail from (each has a quota)


def send_as_an_mta(port: int, sender: str, raw: bytes, source: str) -> tuple[int, bytes]:
    """`send`, tried again a second later after a temporary refusal (421 at connect while
    the connection cap is full, or a 4xx answer), as the team's mail server would (after
    minutes, not a second); the delay counts."""
    while True:
        try:
            code, reply = send(port, sender, raw, source)
        except smtplib.SMTPConnectError as exc:
            if exc.smtp_code // 100 != 4:
                raise
            time.sleep(1)
            continue
        if code // 100 != 4:
            return code, reply
        time.sleep(1)


def send(port: int, sender: str, raw: bytes, source: str = HOST) -> tuple[int, bytes]:
    """(code, reply) of DATA's end (or of the first refusal)."""
    with smtplib.SMTP(HOST, port, timeout=300, source_address=(source, 0)) as smtp:
        smtp.ehlo("client.example")
        code, reply = smtp.mail(sender)
        if code != 250:
            return code, reply
        smtp.rcpt(INTAKE)
        return smtp.data(raw)


def keep_sending(world: World, attack: Attack, make: Callable[[], bytes], source: str) -> None:
    while not attack.stop.is_set():
        try:
            code, _ = send(world.port, world.attacker.email, make(), source)
        except (OSError, smtplib.SMTPException):
            attack.errors += 1
            attack.stop.wait(0.2)
            continue
        attack.sent += 1
        attack.refused += code != 250


def hold_connections(world: World, attack: Attack, count: int, index: int) -> None:
    held: list[socket.socket] = []
    try:
        for i in range(count):
            source = f"127.{10 + index}.{1 + i // 200}.{2 + i % 200}"  # many, as a botnet
            try:
                sock = socket.create_connection((HOST, world.port), 5, (source, 0))
            except OSError:
                attack.errors += 1
                continue
            held.append(sock)
            attack.sent += 1
            attack.refused += sock.recv(4)[:3] == b"421"
        while not attack.stop.wait(3):
            for sock in held:
                with suppress(OSError):
                    sock.sendall(b"NOOP\r\n")
    finally:
        for sock in held:
            sock.close()


def start_attack(world: World, load: str, args: argparse.Namespace, index: int) -> Attack:
    """The attacker's threads for `load`, sending from addresses of phase `index` only, so
    that one phase's quota use does not refuse the next phase's attack."""
    attack = Attack()
    first, second = f"127.{10 + index}.0.2", f"127.{10 + index}.0.3"
    makers: dict[str, Callable[[], bytes]] = {}
    if load == "pkesk-flood":
        flood = binary_envelope(world.attacker.email, flood_packets(world, args.flood_bytes))
        makers = {first: lambda: flood, second: lambda: flood}
    elif load == "nested":
        raw = nested(world, args.nested_packets)
        makers = {first: lambda: raw, second: lambda: raw}
    elif load == "replies":
        makers = {first: rebuilt_clearsigned(world)}
    elif load == "junk":
        blob = junk(args.junk_bytes)
        makers = {first: lambda: blob}
    elif load == "headers":
        heavy = header_heavy(args.header_lines)
        makers = {first: lambda: heavy}
    attack.addresses = len(makers)
    threads = attack.threads
    threads += [
        threading.Thread(target=keep_sending, args=(world, attack, make, source), daemon=True)
        for source, make in makers.items()
    ]
    if load == "connections":
        threads.append(
            threading.Thread(
                target=hold_connections,
                args=(world, attack, args.connections, index),
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()
    return attack


# --- the well-behaved team's side ----------------------------------------------------------


def state_of(world: World, message_id: int) -> str:
    with world.app.engine.connect() as connection:
        found = connection.execute(
            text("SELECT state FROM message WHERE id = :id"), {"id": message_id}
        ).scalar()
    return str(found)


def report_delays(world: World, args: argparse.Namespace, index: int) -> list[float]:
    """The team's reports during phase `index`: each one's delay to acceptance (seconds).

    From an address of the phase's own (127.2.0.x), so that the team's reports of all
    phases together never meet the per-client message quota an attacker meets.
    """
    delays: list[float] = []
    end = time.monotonic() + args.seconds
    n, source = 1000 * (index + 1), f"127.2.0.{index + 1}"
    while time.monotonic() < end:
        began = time.monotonic()
        raw = compose(
            world.good.gpg, REPORT.format(n=n), signer=world.good.fingerprint,
            recipients=[world.app.identity.fingerprint], sender=world.good.email, to=INTAKE,
        )  # fmt: skip
        n += 1
        code, reply = send_as_an_mta(world.port, world.good.email, raw, source)
        if code != 250:
            raise RuntimeError(f"the team's report was refused: {code} {reply!r}")
        message_id = int(reply.decode().rsplit(" ", 1)[1])
        while (state := state_of(world, message_id)) == "received":
            time.sleep(0.01)
        if state != "accepted":
            raise RuntimeError(f"the team's report ended {state}")
        delays.append(time.monotonic() - began)
        time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
    return delays


def data_size(world: World) -> int:
    if world.app.engine.dialect.name == "postgresql":
        with world.app.engine.connect() as connection:
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar()
                or 0
            )
    home = world.app.config.clearinghouse.home
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())


def stored_bytes(world: World) -> int:
    """The raw mail in the spool and the outbox: what the database has to hold."""
    with world.app.engine.connect() as connection:
        spool = connection.execute(text("SELECT coalesce(sum(size), 0) FROM message"))
        outbox = connection.execute(text("SELECT coalesce(sum(length(raw)), 0) FROM outboxentry"))
        return int(spool.scalar() or 0) + int(outbox.scalar() or 0)


def wait_drained(world: World, timeout: float) -> None:
    """Until the worker has processed everything received (the last phase's attack)."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM message WHERE state = 'received'")
    while time.monotonic() < deadline:
        with world.app.engine.connect() as connection:
            if not connection.execute(query).scalar():
                return
        time.sleep(0.2)


def replies_to(world: World, address: str) -> int:
    with world.app.engine.connect() as connection:
        query = text("SELECT count(*) FROM outboxentry WHERE recipient = :r")
        return int(connection.execute(query, {"r": address}).scalar() or 0)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Phase:
    load: str
    delays: list[float]
    attack: Attack
    growth_per_hour: float  # the data directory's files (the database on PostgreSQL)
    stored_per_hour: float  # raw mail in the spool and the outbox
    victim_replies: int


def phase(world: World, load: str, args: argparse.Namespace, index: int) -> Phase:
    wait_drained(world, timeout=600)
    size, replies = data_size(world), replies_to(world, world.victim.email)
    stored = stored_bytes(world)
    began = time.monotonic()
    attack = start_attack(world, load, args, index)
    try:
        delays = report_delays(world, args, index)
    finally:
        attack.stop.set()
        for thread in attack.threads:
            thread.join(timeout=args.gpg_timeout + 60)
    elapsed = time.monotonic() - began
    growth = (data_size(world) - size) / elapsed * 3600
    stored = (stored_bytes(world) - stored) / elapsed * 3600
    replies = replies_to(world, world.victim.email) - replies
    return Phase(load, delays, attack, growth, stored, replies)


def report(phases: list[Phase], quota: int) -> None:
    base = next((p for p in phases if p.load == "none"), None)
    print(f"{'load':<12} {'worst s':>8} {'median s':>9} {'base worst':>10} {'sent':>6} "
          f"{'refused':>8} {'replies':>8} {'stored MiB/h':>13} {'files MiB/h':>12} "
          f"{'bound MiB/h':>12}")  # fmt: skip
    for p in phases:
        worst = max(p.delays) if p.delays else float("nan")
        median = statistics.median(p.delays) if p.delays else float("nan")
        base_worst = max(base.delays) if base and base.delays else float("nan")
        print(
            f"{p.load:<12} {worst:8.2f} {median:9.2f} {base_worst:10.2f} {p.attack.sent:6d} "
            f"{p.attack.refused:8d} {p.victim_replies:8d} {p.stored_per_hour / 2**20:13.1f} "
            f"{p.growth_per_hour / 2**20:12.1f} {p.attack.addresses * quota / 2**20:12.1f}"
        )


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    loads = [load for load in args.loads.split(",") if load]
    unknown = sorted(set(loads) - set(LOADS))
    if unknown:
        print(f"unknown load(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        world = set_up(root, args)
        phases = []
        with serving(world):
            for index, load in enumerate(loads):
                print(f"phase {load} ...", file=sys.stderr, flush=True)
                phases.append(phase(world, load, args, index))
        report(phases, args.quota)
        return 0
    finally:
        for home in root.rglob("pubring.kbx"):
            subprocess.run(["gpgconf", "--homedir", str(home.parent), "--kill", "gpg-agent"],
                           check=False, capture_output=True)  # fmt: skip
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
