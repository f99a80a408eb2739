"""A team's report from the SMTP door to the receipt in its mailbox, with nothing faked.

Teams submit real signed+encrypted mail over SMTP to the real listener; the worker runs
the pipeline; the outbox delivers to a maildir or to a second aiosmtpd acting as the
relay; each team then decrypts and verifies its receipt with its own key.
"""

from __future__ import annotations

import email
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_support import Start
from support import INTAKE, TYPE1, TeamClient
from waiting import wait_until

from gateway.app import App
from gateway.service import worker_for
from gateway.worker import Worker
from store import spool
from store.db import open_session
from store.monitoring import list_outbox
from store.submission_rows import list_submissions

HOST = "127.0.0.1"
ATTACKER = "attacker@evil.example"
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def send(port: int, raw: bytes, *, mail_from: str) -> str:
    """Submit over SMTP; returns the 250 text (which names the queued id)."""
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.ehlo("mta.example")
        smtp.mail(mail_from)
        assert smtp.rcpt(INTAKE)[0] == 250
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return reply.decode()


def with_header(raw: bytes, name: str, value: str) -> bytes:
    newline = b"\r\n" if raw[: raw.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    return f"{name}: {value}".encode() + newline + raw


def maildir_files(app: App) -> list[Path]:
    return sorted((app.config.outbound.maildir / "new").glob("*"))


def check_receipt(app: App, team: TeamClient, raw: bytes) -> email.message.Message:
    """The receipt is for `team`, signed by the gateway, its subject protected inside."""
    outer = email.message_from_bytes(raw)
    assert outer["To"] == team.email
    assert outer["From"] == app.config.clearinghouse.gateway_address
    assert outer["Subject"] == "[...]"
    assert outer.get_all("Reply-To") is None and outer.get_all("Cc") is None
    result = team.decrypt(raw)
    assert result.clean and result.decrypted
    [signature] = result.signatures
    assert signature.outcome == "good"
    assert signature.primary_fingerprint == app.identity.fingerprint
    inner = email.message_from_bytes(result.data)
    assert inner["Subject"].startswith("Receipt: stored type1 2026-10 rev. 1")
    return inner


def outbox_recipients(app: App) -> list[str]:
    with open_session(app.engine) as s:
        return [entry.recipient for entry in list_outbox(s)]


# --- one team, maildir ----------------------------------------------------------------------


def test_submission_over_smtp_gets_a_receipt_at_the_registered_address_only(
    app: App, team: TeamClient, worker: Worker, smtp_server: Start
) -> None:
    # The mail says it is from another address of the team's domain and asks for
    # replies to go to an attacker; the envelope sender is the attacker's too.
    raw = team.submit(TYPE1, sender="someone-else@alpha.example")
    raw = with_header(raw, "Reply-To", ATTACKER)
    reply = send(smtp_server(), raw, mail_from=ATTACKER)
    message_id = int(reply.rsplit(" ", 1)[1])

    assert worker.run_once() == {"accepted": 1}
    assert worker.flush().sent == 1

    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id)
        assert message is not None and (message.state, message.channel) == ("accepted", "smtp")
        assert [(r.team, r.type, r.revision) for r in list_submissions(s)] == [
            ("alpha", "type1", 1)
        ]
    assert outbox_recipients(app) == [team.email]
    [delivered] = maildir_files(app)
    data = delivered.read_bytes()
    assert email.message_from_bytes(data)["Delivered-To"] == team.email
    assert b"evil.example" not in data and b"someone-else" not in data
    check_receipt(app, team, data)


def test_three_teams_submitting_at_once_each_get_their_own_receipt(
    app: App, make_team: Callable[..., TeamClient], smtp_server: Start
) -> None:
    teams = [make_team(handle) for handle in ("alpha", "bravo", "charlie")]
    submissions = {t.handle: t.submit(TYPE1) for t in teams}

    # The service's arrangement: the door wakes a worker that runs in its own thread.
    stop, wake = threading.Event(), threading.Event()
    worker = worker_for(app)
    runner = threading.Thread(target=worker.run, args=(stop, wake), daemon=True)
    runner.start()
    port = smtp_server(on_stored=lambda _id: wake.set())
    errors: list[BaseException] = []

    def submit(t: TeamClient) -> None:
        try:
            send(port, submissions[t.handle], mail_from=t.email)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    senders = [threading.Thread(target=submit, args=(t,)) for t in teams]
    try:
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(DEADLINE)
        assert errors == [] and not any(t.is_alive() for t in senders)
        wait_until(
            lambda: len(maildir_files(app)) >= len(teams),
            f"{len(teams)} receipts in the maildir",
            seconds=DEADLINE,
        )
    finally:
        stop.set()
        wake.set()
        runner.join(DEADLINE)
    assert not runner.is_alive()

    delivered = {
        email.message_from_bytes(path.read_bytes())["Delivered-To"]: path.read_bytes()
        for path in maildir_files(app)
    }
    assert sorted(delivered) == sorted(t.email for t in teams)
    with open_session(app.engine) as s:
        assert spool.count_by_state(s) == {"accepted": 3}
        assert sorted(r.team for r in list_submissions(s)) == ["alpha", "bravo", "charlie"]
    for t in teams:
        check_receipt(app, t, delivered[t.email])
        for other in teams:
            if other is not t:
                result = other.decrypt(delivered[t.email])
                assert not result.decrypted and not result.data


# --- the SMTP relay transport ---------------------------------------------------------------


@dataclass
class Relay:
    """A second aiosmtpd standing in for the MTA the gateway relays through."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler, port = Relay(), free_port()
    controller = Controller(handler, hostname=HOST, port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_receipt_goes_through_the_smtp_relay_to_the_registered_address(
    app: App,
    app_with: Callable[..., App],
    team: TeamClient,
    smtp_server: Start,
    relay: tuple[Relay, int],
) -> None:
    handler, relay_port = relay
    relaying = app_with(outbound={"transport": "smtp", "relay": f"smtp://{HOST}:{relay_port}"})
    raw = with_header(team.submit(TYPE1), "Reply-To", ATTACKER)
    send(smtp_server(), raw, mail_from=ATTACKER)
    worker = worker_for(relaying)
    assert worker.run_once() == {"accepted": 1}
    assert worker.flush().sent == 1

    [(mail_from, rcpt_tos, content)] = handler.received
    assert mail_from == app.config.clearinghouse.gateway_address
    assert rcpt_tos == [team.email]
    assert not list(app.config.outbound.maildir.glob("new/*"))
    check_receipt(app, team, content)
    with open_session(app.engine) as s:
        assert [(e.state, e.recipient) for e in list_outbox(s)] == [("sent", team.email)]
