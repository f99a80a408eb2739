"""The SMTP door against a real aiosmtpd server on loopback, talked to with smtplib.

Each test starts `gateway.smtp.make_controller` on a free port and checks the replies a
client sees (550, 452, 552, 451, 530, 250) together with what the spool then holds.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from support import INTAKE, with_changes

from gateway.app import App
from gateway.smtp import IntakeHandler, make_controller
from store import spool
from store.db import make_engine, open_session
from store.models import Message

HOST = "127.0.0.1"
SENDER = "cert@alpha.example"
RAW = (
    b"From: cert@alpha.example\r\n"
    b"To: stats@clearinghouse.example\r\n"
    b"Subject: statistics\r\n"
    b"\r\n"
    b"not even encrypted; the door does not care\r\n"
)

Start = Callable[..., int]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def start(app: App) -> Iterator[Start]:
    """start(**smtp_section_changes) -> port of a running intake server for `app`."""
    controllers: list[Any] = []
    variants: list[App] = []

    def run(on_stored: Callable[[int], None] | None = None, **smtp: Any) -> int:
        target = app
        if smtp:
            target = App(with_changes(app.config, smtp=smtp))
            variants.append(target)
        port = free_port()
        controller = make_controller(target, HOST, port, on_stored=on_stored)
        controller.start()
        controllers.append(controller)
        return port

    yield run
    for controller in controllers:
        controller.stop()
    for variant in variants:
        variant.engine.dispose()


def stored(app: App) -> list[Message]:
    with open_session(app.engine) as s:
        messages = spool.list_messages(s)
        for message in messages:
            _ = message.raw  # load the deferred column while the session is open
        return messages


def client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP(HOST, port, timeout=10)
    smtp.ehlo("client.example")
    return smtp


# --- recipients ------------------------------------------------------------------------


def test_rcpt_outside_the_intake_addresses_is_refused(app: App, start: Start) -> None:
    with client(start()) as smtp:
        assert smtp.mail(SENDER)[0] == 250
        assert smtp.rcpt("someone-else@clearinghouse.example")[0] == 550
        assert smtp.rcpt("stats@elsewhere.example")[0] == 550
        assert smtp.docmd("DATA")[0] == 503  # no recipient was taken
        smtp.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail(SENDER, ["postmaster@clearinghouse.example"], RAW)
    assert stored(app) == []


def test_intake_address_in_another_case_is_accepted(app: App, start: Start) -> None:
    with client(start()) as smtp:
        refused = smtp.sendmail(SENDER, ["STATS@ClearingHouse.Example"], RAW)
    assert refused == {}
    [message] = stored(app)
    assert spool.envelope_recipients(message) == ["STATS@ClearingHouse.Example"]


def test_recipients_beyond_max_recipients_get_452(app: App, start: Start) -> None:
    with client(start(max_recipients=2)) as smtp:
        smtp.mail(SENDER)
        assert smtp.rcpt(INTAKE)[0] == 250
        assert smtp.rcpt(INTAKE.upper())[0] == 250
        assert smtp.rcpt(INTAKE)[0] == 452
        code, _ = smtp.data(RAW)
        assert code == 250
    [message] = stored(app)
    assert spool.envelope_recipients(message) == [INTAKE, INTAKE.upper()]


# --- size ------------------------------------------------------------------------------


def test_data_over_max_message_bytes_gets_552_and_nothing_is_stored(app: App, start: Start) -> None:
    big = RAW + b"x" * 70 + b"\r\n"
    big = big * (4000 // len(big) + 1)
    with client(start(max_message_bytes=4000)) as smtp:
        smtp.mail(SENDER)  # no SIZE= parameter: the limit must hold at DATA too
        smtp.rcpt(INTAKE)
        code, _ = smtp.data(big)
        assert code == 552
        assert stored(app) == []
        # The session goes on; a message within the limit is still taken.
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    assert [m.raw for m in stored(app)] == [RAW]


def test_mail_with_a_declared_size_over_the_limit_is_refused(app: App, start: Start) -> None:
    with client(start(max_message_bytes=4000)) as smtp:
        assert smtp.mail(SENDER, ["SIZE=5000"])[0] == 552
    assert stored(app) == []


# --- the 250 and what stands behind it ----------------------------------------------------


def test_250_names_the_queued_id_which_is_already_committed(app: App, start: Start) -> None:
    with client(start()) as smtp:
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


def test_the_worker_is_woken_with_the_stored_id(app: App, start: Start) -> None:
    woken: list[int] = []
    with client(start(on_stored=woken.append)) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    [message] = stored(app)
    assert woken == [message.id]


def test_storage_failure_answers_451_without_the_internal_error(app: App, start: Start) -> None:
    port = start()
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
    assert len(stored(app)) == 1


def test_an_error_after_storing_still_answers_250_and_leaks_nothing(app: App, start: Start) -> None:
    def broken_wakeup(_message_id: int) -> None:
        raise RuntimeError("secret internal detail")

    with client(start(on_stored=broken_wakeup)) as smtp:
        smtp.mail(SENDER)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(RAW)
    # Stored is stored: a 4xx/5xx now would make the client resend or bounce it.
    assert code == 250
    assert b"secret" not in reply
    assert len(stored(app)) == 1


def test_an_unexpected_error_in_a_hook_is_not_told_to_the_client(
    app: App, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_rcpt(*_args: Any) -> str:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(IntakeHandler, "handle_RCPT", broken_rcpt)
    with client(start()) as smtp:
        smtp.mail(SENDER)
        code, reply = smtp.rcpt(INTAKE)
    assert code == 451
    assert b"secret" not in reply and b"RuntimeError" not in reply
    assert stored(app) == []


# --- what is stored -----------------------------------------------------------------------


def test_status_headers_are_stripped_and_everything_else_is_byte_identical(
    app: App, start: Start
) -> None:
    head = (
        b"From: cert@alpha.example\r\n"
        b"X-Clearinghouse-Status: accepted\r\n"
        b"Subject: a folded\r\n"
        b"  subject\twith  odd   spacing\r\n"
        b"x-clearinghouse-team: alpha;\r\n"
        b"\tsigner=0123456789ABCDEF0123456789ABCDEF01234567\r\n"
        b"X-Other:  kept ; exactly\r\n"
        b"X-CLEARINGHOUSE-REASON:\r\n"
        b" none\r\n"
        b"To: stats@clearinghouse.example\r\n"
    )
    body = b"\r\nX-Clearinghouse-Status: this is body text, kept\r\n..leading dot\r\n"
    with client(start()) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], head + body) == {}
    [message] = stored(app)
    assert message.raw == (
        b"From: cert@alpha.example\r\n"
        b"Subject: a folded\r\n"
        b"  subject\twith  odd   spacing\r\n"
        b"X-Other:  kept ; exactly\r\n"
        b"To: stats@clearinghouse.example\r\n" + body
    )


@pytest.mark.parametrize(
    "sequence",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-cr"],
)
def test_smuggled_end_of_data_does_not_end_the_message(
    app: App, start: Start, sequence: bytes
) -> None:
    smuggled = (
        b"MAIL FROM:<attacker@evil.example>\r\n"
        b"RCPT TO:<stats@clearinghouse.example>\r\n"
        b"DATA\r\n"
        b"From: attacker@evil.example\r\n\r\nsmuggled body\r\n"
    )
    with client(start()) as smtp:
        smtp.mail(SENDER)
        smtp.rcpt(INTAKE)
        smtp.putcmd("data")
        assert smtp.getreply()[0] == 354
        smtp.send(RAW + b"first part" + sequence + smuggled + b".\r\n")
        code, _ = smtp.getreply()
        assert code == 250
        # Had the server split the data, the next reply would answer the smuggled MAIL.
        assert smtp.docmd("NOOP")[0] == 250
        assert smtp.docmd("QUIT")[0] == 221
        smtp.close()
    [message] = stored(app)
    assert message.envelope_from == SENDER
    assert message.raw.startswith(RAW + b"first part")
    assert b"MAIL FROM:<attacker@evil.example>\r\n" in message.raw
    assert message.raw.endswith(b"smuggled body\r\n")


# --- STARTTLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key) PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clearinghouse test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder(issuer_name=name, subject_name=name, public_key=key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_require_starttls_refuses_mail_before_starttls_and_takes_it_after(
    app: App, start: Start, certificate: tuple[Path, Path]
) -> None:
    cert_file, key_file = certificate
    port = start(tls_cert=cert_file, tls_key=key_file, require_starttls=True)
    with client(port) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.mail(SENDER)[0] == 530
        assert smtp.docmd("RCPT", f"TO:<{INTAKE}>")[0] == 530
        assert stored(app) == []
        smtp.starttls(context=ssl.create_default_context(cafile=str(cert_file)))
        smtp.ehlo("client.example")
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    [message] = stored(app)
    assert message.raw == RAW
