"""The SMTP door against a real aiosmtpd server on loopback, talked to with smtplib.

(The hostile cases, size, smuggling and fake headers, are in tests/security/test_smtp.py.)

Each test starts `gateway.intake.smtp.make_controller` on a free port and checks the replies a
client sees (550, 452, 552, 451, 530, 250) together with what the spool then holds.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from smtp_support import HOST, RAW, SENDER, Start, client, free_port, spooled
from sqlalchemy import text
from support import INTAKE
from waiting import wait_until

from gateway import spool as spooler_module
from gateway.app import App
from gateway.intake.smtp import IntakeHandler, make_controller
from gateway.spool import GroupSpooler
from store import spool
from store.db import make_engine, open_session, transaction
from store.write_turns import commits_so_far

# --- recipients ------------------------------------------------------------------------


def test_rcpt_outside_the_intake_addresses_is_refused(app: App, smtp_server: Start) -> None:
    with client(smtp_server()) as smtp:
        assert smtp.mail(SENDER)[0] == 250
        assert smtp.rcpt("someone-else@clearinghouse.example")[0] == 550
        assert smtp.rcpt("stats@elsewhere.example")[0] == 550
        assert smtp.docmd("DATA")[0] == 503  # no recipient was taken
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail(SENDER, ["postmaster@clearinghouse.example"], RAW)
    assert spooled(app) == []


def test_intake_address_in_another_case_is_accepted(app: App, smtp_server: Start) -> None:
    with client(smtp_server()) as smtp:
        refused = smtp.sendmail(SENDER, ["STATS@ClearingHouse.Example"], RAW)
    assert refused == {}
    [message] = spooled(app)
    assert spool.envelope_recipients(message) == ["STATS@ClearingHouse.Example"]


# --- the 250 and what stands behind it ----------------------------------------------------


def test_250_names_the_queued_id_which_is_already_committed(app: App, smtp_server: Start) -> None:
    with client(smtp_server()) as smtp:
        smtp.mail(SENDER)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(RAW)
    assert code == 250
    queued = int(reply.decode().rsplit(" ", 1)[1])
    assert reply.decode() == f"2.0.0 Queued as {queued}"
    # Read through an engine of its own: only committed rows are visible there.
    other = make_engine(app.config.clearinghouse.database_url)
    try:
        with open_session(other) as s:
            message = spool.get_message(s, queued)
            assert message is not None
            assert (message.raw, message.channel, message.state) == (RAW, "smtp", "received")
            assert message.envelope_from == SENDER
    finally:
        other.dispose()


def test_the_worker_is_woken_with_the_stored_id(app: App, smtp_server: Start) -> None:
    woken: list[int] = []
    with client(smtp_server(on_stored=woken.append)) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    [message] = spooled(app)
    assert woken == [message.id]


def test_storage_failure_answers_451_without_the_internal_error(
    app: App, smtp_server: Start
) -> None:
    port = smtp_server()
    with app.engine.begin() as connection:
        connection.execute(text("ALTER TABLE message RENAME TO message_elsewhere"))
    with client(port) as smtp:
        smtp.mail(SENDER)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(RAW)
        assert code == 451
        words = reply.decode().lower()
        for leak in ("no such table", "operationalerror", "sqlalchemy", "storageerror", "insert"):
            assert leak not in words
        # Storage is back: the client's retry is taken.
        with app.engine.begin() as connection:
            connection.execute(text("ALTER TABLE message_elsewhere RENAME TO message"))
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    assert len(spooled(app)) == 1


def test_an_error_after_storing_still_answers_250_and_leaks_nothing(
    app: App, smtp_server: Start
) -> None:
    def broken_wakeup(_message_id: int) -> None:
        raise RuntimeError("secret internal detail")

    with client(smtp_server(on_stored=broken_wakeup)) as smtp:
        smtp.mail(SENDER)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(RAW)
    # Stored is stored: a 4xx/5xx now would make the client resend or bounce it.
    assert code == 250
    assert b"secret" not in reply
    assert len(spooled(app)) == 1


def test_an_unexpected_error_in_a_hook_is_not_told_to_the_client(
    app: App, smtp_server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_rcpt(*_args: Any) -> str:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(IntakeHandler, "handle_RCPT", broken_rcpt)
    with client(smtp_server()) as smtp:
        smtp.mail(SENDER)
        code, reply = smtp.rcpt(INTAKE)
    assert code == 451
    assert b"secret" not in reply and b"RuntimeError" not in reply
    assert spooled(app) == []


# --- stores grouped into one commit -------------------------------------------------------


@contextmanager
def door(app: App) -> Iterator[tuple[int, GroupSpooler]]:
    """A door of our own, so the test can see its spooler's queue."""
    port = free_port()
    controller = make_controller(app, HOST, port)
    controller.start()
    try:
        yield port, controller.handler.spooler
    finally:
        controller.stop()


@contextmanager
def spool_held(app: App) -> Iterator[None]:
    """Hold the spool's table in a transaction, so a door's store waits until the end."""
    with transaction(app.engine) as s:
        if app.engine.dialect.name == "postgresql":
            s.execute(text("LOCK TABLE message IN EXCLUSIVE MODE"))
        yield


Reply = tuple[int, bytes]


def send_in_background(port: int, raw: bytes, replies: list[Reply]) -> Thread:
    def send() -> None:
        with client(port) as smtp:
            smtp.mail(SENDER)
            smtp.rcpt(INTAKE)
            replies.append(smtp.data(raw))

    thread = Thread(target=send)
    thread.start()
    return thread


def queued(spooler: GroupSpooler, storing: int, waiting: int) -> None:
    wait_until(
        lambda: (spooler.storing, spooler.waiting()) == (storing, waiting),
        f"{storing} storing, {waiting} waiting",
        seconds=20,
        interval=0.005,
    )


def queued_id(reply: Reply) -> int:
    assert reply[0] == 250, reply
    return int(reply[1].decode().rsplit(" ", 1)[1])


def send_during_a_commit(app: App, bodies: list[bytes]) -> tuple[list[Reply], list[Reply], int]:
    """Send RAW, and while its store waits for a held table, RAW + each of `bodies`.

    Returns the first message's reply, the others' replies (in the order they came) and
    how many transactions were committed from the hold on, the hold's own included.
    """
    first: list[Reply] = []
    rest: list[Reply] = []
    with door(app) as (port, spooler):
        commits = commits_so_far(app.engine)
        with spool_held(app):
            threads = [send_in_background(port, RAW, first)]
            queued(spooler, 1, 0)  # the first is taken, and waits for the held table
            threads += [send_in_background(port, RAW + body, rest) for body in bodies]
            queued(spooler, 1, len(bodies))
            assert first == [] and rest == []  # nobody has a 250 before the commit
        for thread in threads:
            thread.join(20)
    return first, rest, commits_so_far(app.engine) - commits


def test_messages_arriving_during_a_commit_are_stored_together_in_the_next(app: App) -> None:
    first, rest, commits = send_during_a_commit(app, [b"%d\r\n" % i for i in range(5)])
    # The holder's commit, then the first message's, then one for the other five.
    assert commits == 3
    ids = [queued_id(reply) for reply in first + rest]
    assert {m.id for m in spooled(app)} == set(ids) and len(set(ids)) == 6


def test_a_group_is_closed_once_it_holds_max_group_bytes(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spooler_module, "MAX_GROUP_BYTES", 2 * len(RAW))
    first, rest, commits = send_during_a_commit(app, [b"%d\r\n" % i for i in range(5)])
    # The holder's commit, the first message's, then the five in groups of two at most.
    assert commits == 2 + 3
    assert sorted(code for code, _ in first + rest) == [250] * 6


def test_a_message_that_cannot_be_stored_costs_the_others_of_its_group_nothing(
    app: App,
) -> None:
    poison_on_insert(app)
    _, rest, _ = send_during_a_commit(app, [b"one\r\n", b"poison\r\n", b"two\r\n"])
    assert sorted(code for code, _ in rest) == [250, 250, 451]
    stored = {m.raw for m in spooled(app)}
    assert stored == {RAW, RAW + b"one\r\n", RAW + b"two\r\n"}


def poison_on_insert(app: App) -> None:
    """A trigger that refuses to store any message containing the word `poison`."""
    with app.engine.begin() as connection:
        if app.engine.dialect.name == "sqlite":
            connection.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON message "
                "WHEN instr(NEW.raw, CAST('poison' AS BLOB)) > 0 "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            ))  # fmt: skip
            return
        connection.execute(text(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF position(convert_to('poison', 'UTF8') IN NEW.raw) > 0 THEN "
            "RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$"
        ))  # fmt: skip
        connection.execute(text(
            "CREATE TRIGGER poison BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION poison()"
        ))  # fmt: skip


# --- STARTTLS -----------------------------------------------------------------------------


def test_require_starttls_refuses_mail_before_starttls_and_takes_it_after(
    app: App, smtp_server: Start, certificate: tuple[Path, Path]
) -> None:
    cert_file, key_file = certificate
    port = smtp_server(tls_cert=cert_file, tls_key=key_file, require_starttls=True)
    with client(port) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.mail(SENDER)[0] == 530
        assert smtp.docmd("RCPT", f"TO:<{INTAKE}>")[0] == 530
        assert spooled(app) == []
        smtp.starttls(context=ssl.create_default_context(cafile=str(cert_file)))
        smtp.ehlo("client.example")
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    [message] = spooled(app)
    assert message.raw == RAW
