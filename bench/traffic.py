"""The mail the throughput bench sends, and how it waits for the gateway's answers.

In: a gateway `App` (its key, its registry) and its SMTP port. Out: teams with their
own keys, registered with the gateway; distinct signed+encrypted submissions; every
mail sent over SMTP from concurrent connections with each one's accept latency (MAIL
FROM to the 250 after DATA); the moment a round's receipts are sealed, or delivered;
and the exact plaintext the gateway sealed into each receipt (for the floor).
"""

from __future__ import annotations

import os
import queue
import re
import smtplib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import select

from gateway.app import App
from keys.compose import compose, open_sealed
from keys.gpg import GnuPG
from store.db import open_session
from store.models import OutboxEntry

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


def parallel(count: int, work: Callable[[int], T], items: int) -> list[T]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(items)))


# --- set-up --------------------------------------------------------------------------------


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


def make_mails(
    app: App, teams: list[Team], first: int, count: int, padding: int = 0
) -> list[tuple[str, bytes]]:
    """`count` distinct submissions, numbered from `first`, round-robin over the teams."""
    fpr = app.identity.fingerprint

    def one(i: int) -> tuple[str, bytes]:
        team = teams[(first + i) % len(teams)]
        return team.email, submission(team, fpr, first + i, padding)

    return parallel(os.cpu_count() or 2, one, count)


def send_all(port: int, mails: list[tuple[str, bytes]], senders: int) -> list[Sent]:
    """Every mail over SMTP, `senders` connections at once; each one's accept latency."""
    work: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    for mail in mails:
        work.put(mail)
    done: list[Sent] = []
    lock = threading.Lock()

    def sender(index: int) -> None:
        with smtplib.SMTP(HOST, port, timeout=120, source_address=client_address(index)) as smtp:
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


def answers(port: int) -> bool:
    """Whether an SMTP server answers on loopback `port`."""
    try:
        smtplib.SMTP(HOST, port, timeout=1).quit()
    except OSError:
        return False
    return True


def client_address(index: int) -> tuple[str, int]:
    """Sender `index`'s own loopback address, as distinct teams' mail servers would have:
    the door caps connections per client address (`[smtp] max_connections_per_client`)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}", 0


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
