"""The IMAP door against a real Dovecot (the `dovecot` fixture in conftest.py).

Messages are put into the mailbox with IMAP APPEND; each test then checks what the spool
holds and, through a second connection, which folder every message ended in. Long-running
pollers run in threads and are stopped at teardown; the only time-bound assertions wait
for a message to be spooled before a deadline of a few seconds.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from click.testing import CliRunner
from imapclient import IMAPClient
from samples import samples
from support import INTAKE, TeamClient
from waiting import wait_until

from contract.errors import ImapError
from gateway.app import App
from gateway.cli import cli
from gateway.config import load_config
from gateway.intake import imap
from gateway.intake.imap import PollResult, intake_key, looks_like_message, poll_once
from gateway.intake.imap_watch import start_poller
from gateway.spool import accept
from gateway.worker import Worker
from store import spool
from store.db import open_session
from store.models import Message

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 8.0  # seconds a poller may take to spool a message it should see at once


class Server(Protocol):
    """What the tests use of conftest's `Dovecot` (test modules cannot import conftest)."""

    host: str
    user: str
    imap_port: int
    imaps_port: int
    cert: Path
    password_file: Path

    def restart(self) -> None: ...
    def append(self, raw: bytes, folder: str = "INBOX") -> None: ...
    def messages(self, folder: str) -> list[tuple[bytes, tuple[bytes, ...]]]: ...


Door = Callable[..., App]


@pytest.fixture
def door(app_with: Callable[..., App], dovecot: Server) -> Door:
    """door(**imap_changes) -> an App on the test database whose [imap] is the Dovecot
    (and with `smtp={...}`, whose [smtp] is changed too).

    By default: implicit TLS on the IMAPS port, the self-signed certificate trusted
    through `ca_file`, and a poll interval long enough that only IDLE delivers quickly.
    """

    def make(*, smtp: dict[str, Any] | None = None, **changes: Any) -> App:
        imap_section = {
            "host": dovecot.host,
            "port": dovecot.imaps_port,
            "security": "tls",
            "ca_file": dovecot.cert,
            "username": dovecot.user,
            "password_file": dovecot.password_file,
            "poll_seconds": 300,
        } | changes
        return app_with(imap=imap_section, smtp=smtp or {})

    return make


@pytest.fixture
def pollers() -> Iterator[Callable[..., Callable[[], int]]]:
    """pollers(app) starts `run_poller` in a thread; returns how often it woke the worker."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(target: App) -> Callable[[], int]:
        stop, woken = threading.Event(), []
        running.append((stop, start_poller(target, stop, lambda: woken.append(1))))
        return lambda: len(woken)

    yield start
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(timeout=15)
        assert not thread.is_alive(), "the poller did not stop"


def mail(n: int, body: str = "statistics follow") -> bytes:
    return (
        f"From: cert@alpha.example\r\nTo: {INTAKE}\r\nSubject: report {n}\r\n"
        f"Message-ID: <{n}@alpha.example>\r\n\r\n{body}\r\n"
    ).encode()


def spooled(app: App) -> list[Message]:
    with open_session(app.engine) as s:
        messages = spool.list_messages(s)
        for message in messages:
            _ = message.raw  # load the deferred column while the session is open
        return messages


def ids_in(dovecot: Server, folder: str) -> list[str]:
    """The Message-ID numbers of the messages in `folder`, in order."""
    found = []
    for raw, _ in dovecot.messages(folder):
        header = raw.split(b"Message-ID: <", 1)
        found.append(header[1].split(b"@", 1)[0].decode() if len(header) == 2 else "?")
    return found


# --- one pass ------------------------------------------------------------------------------


def test_poll_once_spools_a_real_submission_then_moves_it(
    door: Door, dovecot: Server, app: App, team: TeamClient, worker: Worker
) -> None:
    submission = team.submit()
    dovecot.append(submission)
    dovecot.append(mail(2))

    result = poll_once(door())

    assert result == PollResult(fetched=2, stored=2, moved=2)
    rows = spooled(app)
    assert [(m.channel, m.raw) for m in rows] == [("imap", submission), ("imap", mail(2))]
    assert dovecot.messages("INBOX") == []
    assert [raw for raw, _ in dovecot.messages("Processed")] == [submission, mail(2)]
    assert worker.run_once() == {"accepted": 1, "quarantined": 1}


def test_the_intake_key_names_mailbox_message_id_and_content(door: Door, dovecot: Server) -> None:
    target = door()
    key = intake_key(target.config.imap, mail(7))

    assert key.startswith(f"imap:intake@{dovecot.host}/INBOX:<7@alpha.example>:")
    assert key != intake_key(target.config.imap, mail(7, body="other figures"))
    assert intake_key(target.config.imap, b"Subject: none\r\n\r\nx").count("::") == 1


def test_a_crash_after_spooling_leaves_the_message_for_the_next_poll(
    door: Door, dovecot: Server, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = door()
    dovecot.append(mail(1))

    def crash(*_args: Any) -> bool:
        raise RuntimeError("killed between commit and move")

    monkeypatch.setattr(imap, "_file", crash)
    with pytest.raises(RuntimeError):
        poll_once(target)
    assert len(spooled(app)) == 1
    assert ids_in(dovecot, "INBOX") == ["1"]

    monkeypatch.undo()
    result = poll_once(target)

    assert result == PollResult(fetched=1, known=1, moved=1)
    assert len(spooled(app)) == 1
    assert ids_in(dovecot, "INBOX") == [] and ids_in(dovecot, "Processed") == ["1"]


def test_the_same_bytes_delivered_twice_are_stored_once(
    door: Door, dovecot: Server, app: App
) -> None:
    dovecot.append(mail(1))
    dovecot.append(mail(1))

    assert poll_once(door()) == PollResult(fetched=2, stored=1, known=1, moved=2)
    assert len(spooled(app)) == 1


def test_unparseable_messages_go_to_the_failed_folder_unstored(
    door: Door, dovecot: Server, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    junk, prose = NOT_MESSAGES["png-header"], NOT_MESSAGES["prose"]
    dovecot.append(junk)
    dovecot.append(mail(1))
    dovecot.append(prose)
    as_stored = [raw for raw, _ in dovecot.messages("INBOX")]  # Dovecot rewrites NUL and bare CR

    with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"):
        result = poll_once(door())

    assert result == PollResult(fetched=3, stored=1, moved=1, failed=2)
    assert [m.raw for m in spooled(app)] == [mail(1)]
    assert [raw for raw, _ in dovecot.messages("Failed")] == [as_stored[0], as_stored[2]]
    assert ids_in(dovecot, "Processed") == ["1"]
    assert caplog.text.count("is not an RFC 5322 message") == 2


def test_oversize_messages_go_to_the_failed_folder_unread(
    door: Door, dovecot: Server, app: App
) -> None:
    dovecot.append(mail(1, body="x" * 5000))
    dovecot.append(mail(2))
    result = poll_once(door(smtp={"max_message_bytes": 2000}))
    assert (result.oversize, result.stored) == (1, 1)
    assert [m.raw for m in spooled(app)] == [mail(2)]
    assert ids_in(dovecot, "Failed") == ["1"]
    assert ids_in(dovecot, "Processed") == ["2"]


MESSAGES = samples("looks-like-a-message/yes")  # each described in tests/data/README.md
NOT_MESSAGES = samples("looks-like-a-message/no")


@pytest.mark.parametrize("raw", MESSAGES.values(), ids=MESSAGES)
def test_what_counts_as_a_message(raw: bytes) -> None:
    assert looks_like_message(raw)


@pytest.mark.parametrize("raw", NOT_MESSAGES.values(), ids=NOT_MESSAGES)
def test_what_does_not(raw: bytes) -> None:
    assert not looks_like_message(raw)


@pytest.mark.parametrize("hidden", [("MOVE",), ("MOVE", "UIDPLUS")])
def test_without_move_it_copies_deletes_and_expunges(
    door: Door, dovecot: Server, monkeypatch: pytest.MonkeyPatch, hidden: tuple[str, ...]
) -> None:
    real = IMAPClient.has_capability

    def has_capability(self: IMAPClient, capability: str) -> bool:
        return capability.upper() not in hidden and bool(real(self, capability))

    monkeypatch.setattr(IMAPClient, "has_capability", has_capability)
    dovecot.append(mail(1))
    dovecot.append(mail(2))

    assert poll_once(door()) == PollResult(fetched=2, stored=2, moved=2)
    assert ids_in(dovecot, "INBOX") == []
    assert ids_in(dovecot, "Processed") == ["1", "2"]


def test_where_moving_is_impossible_the_message_is_flagged_in_place(
    door: Door, dovecot: Server, app: App
) -> None:
    target = door(processed_folder="Done/Here")  # a name Dovecot refuses to create
    dovecot.append(mail(1))

    assert poll_once(target) == PollResult(fetched=1, stored=1, flagged=1)
    [(raw, flags)] = dovecot.messages("INBOX")
    assert raw == mail(1) and {b"\\Flagged", b"\\Seen"} <= set(flags)

    assert poll_once(target) == PollResult(fetched=1, known=1, flagged=1)
    assert len(spooled(app)) == 1


# --- two pollers -----------------------------------------------------------------------------


def test_a_second_poller_taking_messages_mid_poll_stores_nothing_twice(
    door: Door, dovecot: Server, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = door(), door()
    for n in range(1, 4):
        dovecot.append(mail(n))
    inner: list[PollResult] = []

    def accept_after_a_rival(*args: Any, **kwargs: Any) -> tuple[int, bool]:
        if not inner:  # the first poller holds message 1: the second empties the box now
            inner.append(PollResult())
            inner[0] = poll_once(second)
        return accept(*args, **kwargs)

    monkeypatch.setattr(imap, "accept", accept_after_a_rival)
    outer = poll_once(first)

    assert inner == [PollResult(fetched=3, stored=3, moved=3)]
    assert outer == PollResult(fetched=1, known=1, vanished=3)
    assert len(spooled(app)) == 3
    assert ids_in(dovecot, "Processed") == ["1", "2", "3"]


def test_two_concurrent_pollers_store_every_message_once(
    door: Door, dovecot: Server, app: App, pollers: Callable[..., Callable[[], int]]
) -> None:
    count = 8
    woken = [pollers(door()), pollers(door())]
    for n in range(1, count + 1):
        dovecot.append(mail(n))

    wait_until(
        lambda: len(spooled(app)) == count and not dovecot.messages("INBOX"),
        f"{count} messages spooled and none left in INBOX",
        seconds=DEADLINE,
    )
    rows = spooled(app)
    assert sorted(m.raw for m in rows) == sorted(mail(n) for n in range(1, count + 1))
    assert len({m.intake_key for m in rows}) == count
    assert set(ids_in(dovecot, "Processed")) == {str(n) for n in range(1, count + 1)}
    assert sum(w() for w in woken) == count


# --- the long-running poller -----------------------------------------------------------------


def test_idle_delivers_a_message_within_seconds(
    door: Door, dovecot: Server, app: App, pollers: Callable[..., Callable[[], int]]
) -> None:
    woken = pollers(door(idle=True, poll_seconds=300))  # only IDLE can be this quick
    dovecot.append(mail(1))
    wait_until(lambda: len(spooled(app)) == 1, "mail 1 to be spooled", seconds=DEADLINE)

    dovecot.append(mail(2))

    wait_until(lambda: len(spooled(app)) == 2, "two messages spooled", seconds=DEADLINE)
    wait_until(
        lambda: ids_in(dovecot, "Processed") == ["1", "2"],
        "mails 1 and 2 in Processed",
        seconds=DEADLINE,
    )
    assert woken() == 2


@pytest.mark.parametrize("how", ["idle off", "no IDLE on the server"])
def test_without_idle_it_polls(
    door: Door,
    dovecot: Server,
    app: App,
    pollers: Callable[..., Callable[[], int]],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "no IDLE on the server":
        real = IMAPClient.has_capability
        monkeypatch.setattr(
            IMAPClient,
            "has_capability",
            lambda self, cap: cap.upper() != "IDLE" and bool(real(self, cap)),
        )
    pollers(door(idle=how != "idle off", poll_seconds=1))
    dovecot.append(mail(1))

    wait_until(lambda: len(spooled(app)) == 1, "mail 1 to be spooled", seconds=DEADLINE)
    wait_until(
        lambda: ids_in(dovecot, "Processed") == ["1"], "mail 1 in Processed", seconds=DEADLINE
    )


def test_a_server_restart_mid_session_loses_and_duplicates_nothing(
    door: Door, dovecot: Server, app: App, pollers: Callable[..., Callable[[], int]]
) -> None:
    # IDLE is renewed every 3 s: mail delivered in the instant between the reconnected
    # poller's last look and IDLE is taken then (the instant is the server's; the tests
    # above take mail delivered during a drain or after it at once).
    pollers(door(idle=True, poll_seconds=3))
    dovecot.append(mail(1))
    wait_until(lambda: len(spooled(app)) == 1, "mail 1 to be spooled", seconds=DEADLINE)

    dovecot.restart()  # every session is cut, the idling poller's too
    dovecot.append(mail(2))
    dovecot.append(mail(3))

    wait_until(lambda: len(spooled(app)) == 3, "three messages spooled", seconds=20)
    assert sorted(m.raw for m in spooled(app)) == [mail(1), mail(2), mail(3)]
    wait_until(
        lambda: ids_in(dovecot, "Processed") == ["1", "2", "3"],
        "mails 1 to 3 in Processed",
        seconds=DEADLINE,
    )
    assert ids_in(dovecot, "INBOX") == []


def test_the_poller_stops_promptly_while_idling(door: Door, dovecot: Server, app: App) -> None:
    stop = threading.Event()
    thread = start_poller(door(idle=True), stop)
    dovecot.append(mail(1))
    wait_until(lambda: len(spooled(app)) == 1, "mail 1 to be spooled", seconds=DEADLINE)

    stop.set()
    thread.join(timeout=5)

    assert not thread.is_alive()


# --- connection security and errors --------------------------------------------------------


def test_starttls_on_the_plain_port(door: Door, dovecot: Server, app: App) -> None:
    dovecot.append(mail(1))

    result = poll_once(door(security="starttls", port=dovecot.imap_port))

    assert result.stored == 1


def test_plain_text_is_allowed_on_loopback(door: Door, dovecot: Server) -> None:
    dovecot.append(mail(1))

    assert poll_once(door(security="none", port=dovecot.imap_port, ca_file=None)).stored == 1


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_self_signed_certificate_is_refused_unless_its_ca_is_configured(
    door: Door, dovecot: Server, app: App, security: str
) -> None:
    port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    dovecot.append(mail(1))

    with pytest.raises(ImapError, match="certificate not trusted.*ca_file"):
        poll_once(door(security=security, port=port, ca_file=None))

    assert spooled(app) == [] and ids_in(dovecot, "INBOX") == ["1"]


def test_a_wrong_password_is_a_clear_error(door: Door, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password\n")

    with pytest.raises(ImapError, match="login as 'intake' .* failed: .*Authentication failed"):
        poll_once(door(password_file=wrong))


# --- the command line ------------------------------------------------------------------------


def write_config(
    tmp_path: Path, dovecot: Server, password_file: Path, database_url: str, **imap: Any
) -> Path:
    values = {
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "ca_file": str(dovecot.cert),
        "username": dovecot.user,
        "password_file": str(password_file),
    } | imap
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = tmp_path / "clearinghouse.toml"
    home = f'home = "{tmp_path / "cli-var"}"\ndatabase_url = {json.dumps(database_url)}'
    path.write_text(f"[clearinghouse]\n{home}\n\n[imap]\n")
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    if not (tmp_path / "cli-var").exists():  # a gateway `init` has made
        assert CliRunner().invoke(cli, ["--config", str(path), "init"]).exit_code == 0
    return path


def test_cli_poll_imap_once_prints_what_it_did(
    tmp_path: Path, dovecot: Server, database_url: str
) -> None:
    dovecot.append(mail(1))
    config = write_config(tmp_path, dovecot, dovecot.password_file, database_url)

    result = CliRunner().invoke(cli, ["--config", str(config), "poll-imap", "--once"])

    assert result.exit_code == 0, result.output
    summary = "fetched 1: 1 stored, 0 already spooled, 0 unparseable, 0 oversize; 1 moved"
    assert summary in result.output
    assert ids_in(dovecot, "Processed") == ["1"]


@pytest.mark.parametrize("problem", ["wrong password", "untrusted certificate"])
def test_cli_poll_imap_fails_with_one_line_and_exit_1(
    tmp_path: Path, dovecot: Server, problem: str, database_url: str
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password\n")
    if problem == "wrong password":
        config = write_config(tmp_path, dovecot, wrong, database_url)
    else:
        config = write_config(tmp_path, dovecot, dovecot.password_file, database_url, ca_file="")

    result = CliRunner().invoke(cli, ["--config", str(config), "poll-imap", "--once"])

    assert result.exit_code == 1
    expected = "login as 'intake'" if problem == "wrong password" else "certificate not trusted"
    assert re.search(f"^error: IMAP .*{expected}", result.output, re.MULTILINE)
    assert "Traceback" not in result.output and "not the password" not in result.output


def test_cli_poll_imap_keeps_polling_until_sigterm(
    tmp_path: Path, dovecot: Server, database_url: str
) -> None:
    config = write_config(tmp_path, dovecot, dovecot.password_file, database_url)
    argv = [sys.executable, "-m", "gateway.cli", "--config", str(config), "poll-imap"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        dovecot.append(mail(1))
        wait_until(lambda: ids_in(dovecot, "Processed") == ["1"], "mail 1 in Processed", seconds=20)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err.decode()
    assert b"stored as message 1" in err
    separate = App(load_config(config))
    try:
        assert [m.raw for m in spooled(separate)] == [mail(1)]
    finally:
        separate.engine.dispose()


def test_serve_runs_the_poller_beside_smtp_and_the_worker(
    tmp_path: Path, dovecot: Server, app: App, team: TeamClient
) -> None:
    database_url = app.config.clearinghouse.database_url
    config = write_config(tmp_path, dovecot, dovecot.password_file, database_url)
    home = app.config.clearinghouse.home  # the gateway key made by the `app` fixture
    config.write_text(config.read_text().replace(str(tmp_path / "cli-var"), str(home)))
    smtp = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--smtp", smtp]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        dovecot.append(team.submit())
        wait_until(
            lambda: [m.state for m in spooled(app)] == ["accepted"],
            "the submission to be accepted",
            seconds=30,
        )
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err.decode()
    assert [m.channel for m in spooled(app)] == ["imap"]
    assert ids_in(dovecot, "INBOX") == [] and len(dovecot.messages("Processed")) == 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "step",
    [
        # after the drain's SEARCH, before its MOVE: the server announces the message
        # (EXISTS) in its reply to that MOVE, and neither a NOOP nor IDLE says it again
        "_store",
        # after the drain, before IDLE: Dovecot reports it only at DONE, not while idling
        "drain",
    ],
)
def test_mail_arriving_during_or_after_a_drain_is_taken_at_once(
    door: Door, dovecot: Server, app: App, pollers: Callable[..., Callable[[], int]],
    monkeypatch: pytest.MonkeyPatch, step: str,
) -> None:  # fmt: skip
    # Either way the poller selects the folder again before IDLE and sees its UIDNEXT
    # move; without that, mail 2 would wait for the next poll (300 s here).
    real = getattr(imap, step)
    calls: list[int] = []

    def then_deliver(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            dovecot.append(mail(2))
        return result

    monkeypatch.setattr(imap, step, then_deliver)
    dovecot.append(mail(1))
    pollers(door(idle=True, poll_seconds=300))
    wait_until(lambda: len(spooled(app)) == 2, "two messages spooled", seconds=DEADLINE)
    assert sorted(m.raw for m in spooled(app)) == [mail(1), mail(2)]
    wait_until(
        lambda: ids_in(dovecot, "Processed") == ["1", "2"],
        "mails 1 and 2 in Processed",
        seconds=DEADLINE,
    )
