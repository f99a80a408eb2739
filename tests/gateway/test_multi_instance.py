"""Several gateway instances on one PostgreSQL: no message or receipt is handled twice,
and an instance that dies mid-batch loses nothing.

The instances are real `clearinghouse process` subprocesses (each with two worker
threads) sharing one database schema and one gateway data directory, as instances
behind the same MX records would share a database and the gateway key. The
submissions are real: signed by four teams, encrypted to the gateway, made once for
this module (about twenty seconds for a thousand).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_support import HOST, free_port
from sqlalchemy import func
from sqlmodel import col, select
from support import INTAKE, TYPE1, TeamClient, config_toml, with_changes
from waiting import wait_until

from gateway.app import App
from gateway.config import default_config
from gateway.delivery import maildir_name
from gateway.spool import accept
from keys.gpg import GnuPG
from keys.identity import create_identity
from store.db import open_session
from store.models import Message, OutboxEntry, Submission, Team, utcnow
from store.monitoring import list_outbox

pytestmark = pytest.mark.postgresql_only

ROOT = Path(__file__).resolve().parents[2]
TEAMS = 4
MESSAGES = 1000


@dataclass(frozen=True)
class Fleet:
    """The gateway's data directory (its key) and the teams' submissions, made once."""

    home: Path
    teams: list[TeamClient]
    submissions: list[bytes]  # submission i is from teams[i % TEAMS], all different


def _report(index: int) -> str:
    return TYPE1.replace("Requests: 1204", f"Requests: {index}")


def _team(root: Path, gateway_fpr: str, gateway_key: str, index: int) -> TeamClient:
    handle = f"team{index}"
    gpg = GnuPG(root / handle)
    fpr = gpg.generate_key(f"CERT {handle}", f"cert@{handle}.example")
    gpg.import_keys(gateway_key.encode())
    return TeamClient(handle, f"cert@{handle}.example", gpg, fpr, gateway_fpr)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    gateway = GnuPG(root / "gateway" / "gnupg")
    fpr = create_identity(gateway, "Test Clearinghouse", INTAKE).fingerprint
    teams = [_team(root, fpr, gateway.export_public(fpr), i) for i in range(TEAMS)]
    with ThreadPoolExecutor(4) as pool:
        made = pool.map(lambda i: teams[i % TEAMS].submit(_report(i)), range(MESSAGES))
        submissions = list(made)
    yield Fleet(root / "gateway", teams, submissions)
    for keyring in root.rglob("pubring.kbx"):
        subprocess.run(["gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent"],
                       check=False, capture_output=True, timeout=60)  # fmt: skip


@pytest.fixture
def gateway(fleet: Fleet, database_url: str, tmp_path: Path) -> Iterator[App]:
    """The shared store: a fresh schema, the fleet's teams registered, the fleet's key."""
    config = with_changes(
        default_config(fleet.home),
        core={"database_url": database_url},
        outbound={"maildir": tmp_path / "outgoing"},
    )
    app = App(config)
    app.initialise()
    for team in fleet.teams:
        app.registry.add_team(team.handle, name=team.handle.upper(), email=team.email)
        app.registry.import_keys(team.handle, team.gpg.export_public(team.fingerprint).encode())
    yield app
    app.engine.dispose()


def spool(app: App, submissions: list[bytes]) -> list[int]:
    return [accept(app.engine, raw, "smtp")[0] for raw in submissions]


def instance_config(app: App, tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(config_toml(app.config, extra))
    return path


# How long one instance may take over its batch (a thousand messages by two instances
# took about a minute on a loaded 2-core machine): past it, the test fails saying where
# the messages are, instead of waiting on.
INSTANCE_SECONDS = 300
_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_instance_outlives_its_test() -> Iterator[None]:
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """`clearinghouse process ARGS` as an instance runs it; output into files beside it."""
    env = {k: v for k, v in os.environ.items() if k != "CLEARINGHOUSE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with (
        open(config.with_suffix(".out"), "wb") as out,
        open(config.with_suffix(".err"), "wb") as err,
    ):
        argv = [sys.executable, "-m", "gateway.cli", "--config", str(config), "process", *args]
        _started.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err))
        return _started[-1]


def where_things_are(app: App) -> str:
    """The messages by state and the leases held: what a failed wait reports."""
    with open_session(app.engine) as s:
        states = Counter(s.exec(select(Message.state)))
    return f"messages by state {dict(states)}, {leased(app)} leases held"


def finished(process: subprocess.Popen[bytes], config: Path, app: App) -> str:
    """The instance's stdout once it exited 0 (its stderr in the failure message)."""
    log = config.with_suffix(".err")
    try:
        code = process.wait(timeout=INSTANCE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        pytest.fail(
            f"instance {config.stem} still running after {INSTANCE_SECONDS} s, "
            f"{where_things_are(app)}; its log ends:\n{log.read_text(errors='replace')[-3000:]}"
        )
    assert code == 0, log.read_text(errors="replace")[-3000:]
    return config.with_suffix(".out").read_text()


def count(app: App, *where: Any) -> int:
    with open_session(app.engine) as s:
        return int(s.exec(select(func.count()).select_from(Message).where(*where)).one())


def assert_each_message_stored_once(app: App, ids: list[int]) -> None:
    """Every message accepted, its report stored once, revisions 1..n per team, no gaps."""
    with open_session(app.engine) as s:
        states = Counter(s.exec(select(Message.state).where(col(Message.id).in_(ids))))
        assert states == {"accepted": len(ids)}
        rows = s.exec(
            select(Team.handle, Submission.revision, Submission.message_id)
            .select_from(Submission)
            .join(Team, col(Team.id) == col(Submission.team_id))
            .order_by(col(Submission.revision))
        ).all()
        by_message = Counter(message_id for _, _, message_id in rows)
        assert set(by_message) == set(ids) and set(by_message.values()) == {1}
        revisions: dict[str, list[int]] = {}
        for handle, revision, _ in rows:
            revisions.setdefault(handle, []).append(revision)
        assert all(r == list(range(1, len(r) + 1)) for r in revisions.values()), revisions
        assert sum(len(r) for r in revisions.values()) == len(ids)


def receipts(app: App) -> list[OutboxEntry]:
    with open_session(app.engine) as s:
        return list_outbox(s)


@dataclass
class Sink:
    """An SMTP relay on loopback that records every message handed to it."""

    received: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname=HOST, port=port)
    controller.start()
    yield handler, port
    controller.stop()


def message_id_of(raw: bytes) -> str:
    return str(message_from_bytes(raw)["Message-ID"])


def test_two_instances_process_each_message_and_send_each_receipt_exactly_once(
    fleet: Fleet, gateway: App, sink: tuple[Sink, int], tmp_path: Path
) -> None:
    recorder, port = sink
    ids = spool(gateway, fleet.submissions)
    extra = f'[outbound]\ntransport = "smtp"\nrelay = "smtp://{HOST}:{port}"\n'
    configs = [instance_config(gateway, tmp_path, name, extra) for name in ("one", "two")]

    instances = [start(config, "--once") for config in configs]
    outputs = [
        finished(process, config, gateway)
        for process, config in zip(instances, configs, strict=True)
    ]

    done = [re.search(r"processed: (\d+) accepted;", out) for out in outputs]
    shares = [int(match[1]) if match else 0 for match in done]
    assert sum(shares) == MESSAGES and min(shares) > 0, outputs  # both took part
    assert count(gateway, col(Message.attempts) != 1) == 0  # each claimed exactly once
    assert_each_message_stored_once(gateway, ids)
    entries = receipts(gateway)
    assert sorted(e.dedupe_key for e in entries) == sorted(f"receipt:{i}" for i in ids)
    assert {e.state for e in entries} == {"sent"}
    sent = Counter(message_id_of(raw) for raw in recorder.received)
    assert set(sent.values()) == {1}  # no receipt twice ...
    assert set(sent) == {message_id_of(e.raw) for e in entries}  # ... and every one once


def leased(app: App) -> int:
    """Messages and outbox entries that some worker holds a lease on right now."""
    now = utcnow()
    with open_session(app.engine) as s:
        held = [
            s.exec(select(func.count()).select_from(table).where(col(table.lease_until) > now))
            for table in (Message, OutboxEntry)
        ]
        return sum(int(result.one()) for result in held)


def test_an_instance_killed_mid_batch_loses_and_duplicates_nothing(
    fleet: Fleet, gateway: App, tmp_path: Path
) -> None:
    batch = fleet.submissions[:300]
    ids = spool(gateway, batch)
    # Short leases, so that the survivor may take over what the dead one held soon.
    maildir = gateway.config.outbound.maildir
    extra = f'[outbound]\nmaildir = "{maildir}"\n[worker]\nlease_seconds = 5\n'
    config = instance_config(gateway, tmp_path, "doomed", extra)

    doomed = start(config)  # runs until stopped
    accepted = Message.state == "accepted"
    wait_until(
        lambda: count(gateway, accepted) >= 40,
        lambda: f"40 messages accepted ({where_things_are(gateway)})",
        seconds=120,
    )
    wait_until(
        lambda: leased(gateway) > 0,
        lambda: f"the instance to hold a lease ({where_things_are(gateway)})",
        seconds=30,
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    in_flight = leased(gateway)  # held by the dead instance: nobody may touch them yet
    abandoned = count(gateway, Message.state == "received", col(Message.lease_owner).is_not(None))

    wait_until(
        lambda: leased(gateway) == 0,
        lambda: f"the dead instance's leases to expire ({where_things_are(gateway)})",
        seconds=30,
    )
    survivor = start(config, "--once")
    finished(survivor, config, gateway)

    assert in_flight > 0  # the kill did interrupt work in progress
    assert_each_message_stored_once(gateway, ids)
    assert count(gateway, col(Message.attempts) > 2) == 0
    assert count(gateway, col(Message.attempts) == 2) == abandoned  # taken over once each
    entries = receipts(gateway)
    assert len(entries) == len(ids) and {e.state for e in entries} == {"sent"}
    delivered = sorted(p.name for p in (maildir / "new").iterdir())
    assert delivered == sorted(maildir_name(f"outbox-{e.id}") for e in entries)
