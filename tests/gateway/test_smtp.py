"""The SMTP door against a real aiosmtpd server on loopback, talked to with smtplib.

(The hostile cases, size, smuggling and fake headers, are in tests/security/test_smtp.py.)

Each test starts `gateway.smtp.make_controller` on a free port and checks the replies a
client sees (550, 452, 552, 451, 530, 250) together with what the spool then holds.
"""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest
from smtp_support import RAW, SENDER, Start, client, spooled
from sqlalchemy import text
from support import INTAKE

from gateway.app import App
from gateway.smtp import IntakeHandler
from store import spool
from store.db import make_engine, open_session

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
