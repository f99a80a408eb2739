"""Attack class 12 at the SMTP door: size, smuggling, recipients, STARTTLS, fake headers.

A real aiosmtpd intake server on loopback, talked to with smtplib or a raw socket.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from smtp_support import HOST, RAW, SENDER, Start, client, spooled
from support import INTAKE

from gateway.app import App
from store import spool


def test_recipients_beyond_max_recipients_get_452(app: App, smtp_server: Start) -> None:
    with client(smtp_server(max_recipients=2)) as smtp:
        smtp.mail(SENDER)
        assert smtp.rcpt(INTAKE)[0] == 250
        assert smtp.rcpt(INTAKE.upper())[0] == 250
        assert smtp.rcpt(INTAKE)[0] == 452
        code, _ = smtp.data(RAW)
        assert code == 250
    [message] = spooled(app)
    assert spool.envelope_recipients(message) == [INTAKE, INTAKE.upper()]


def test_data_over_max_message_bytes_gets_552_and_nothing_is_stored(
    app: App, smtp_server: Start
) -> None:
    big = RAW + b"x" * 70 + b"\r\n"
    big = big * (4000 // len(big) + 1)
    with client(smtp_server(max_message_bytes=4000)) as smtp:
        smtp.mail(SENDER)  # no SIZE= parameter: the limit must hold at DATA too
        smtp.rcpt(INTAKE)
        code, _ = smtp.data(big)
        assert code == 552
        assert spooled(app) == []
        # The session goes on; a message within the limit is still taken.
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    assert [m.raw for m in spooled(app)] == [RAW]


def test_mail_with_a_declared_size_over_the_limit_is_refused(app: App, smtp_server: Start) -> None:
    with client(smtp_server(max_message_bytes=4000)) as smtp:
        assert smtp.mail(SENDER, ["SIZE=5000"])[0] == 552
    assert spooled(app) == []


def test_status_headers_are_stripped_and_everything_else_is_byte_identical(
    app: App, smtp_server: Start
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
    with client(smtp_server()) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], head + body) == {}
    [message] = spooled(app)
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
    app: App, smtp_server: Start, sequence: bytes
) -> None:
    smuggled = (
        b"MAIL FROM:<attacker@evil.example>\r\n"
        b"RCPT TO:<stats@clearinghouse.example>\r\n"
        b"DATA\r\n"
        b"From: attacker@evil.example\r\n\r\nsmuggled body\r\n"
    )
    with client(smtp_server()) as smtp:
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
    [message] = spooled(app)
    assert message.envelope_from == SENDER
    assert message.raw.startswith(RAW + b"first part")
    assert b"MAIL FROM:<attacker@evil.example>\r\n" in message.raw
    assert message.raw.endswith(b"smuggled body\r\n")


def test_starttls_command_injection_is_not_executed_after_the_handshake(
    app: App, smtp_server: Start, certificate: tuple[Path, Path]
) -> None:
    cert_file, key_file = certificate
    port = smtp_server(tls_cert=cert_file, tls_key=key_file)
    with socket.create_connection((HOST, port), timeout=10) as raw:
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"220")
        raw.sendall(b"EHLO client.example\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        # Plaintext commands pipelined behind STARTTLS (CVE-2011-0411 style): they must
        # be thrown away, not run inside the encrypted session.
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<attacker@evil.example>\r\n")
        assert reader.readline().startswith(b"220")
        context = ssl.create_default_context(cafile=str(cert_file))
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            answers = tls.makefile("rb")
            tls.sendall(b"EHLO client.example\r\n")
            while not answers.readline().startswith(b"250 "):
                pass
            tls.sendall(f"RCPT TO:<{INTAKE}>\r\n".encode())
            # Had the injected MAIL run, RCPT would be accepted; without it, 503.
            assert answers.readline().startswith(b"503")
            tls.sendall(b"QUIT\r\n")
    assert spooled(app) == []


def test_bare_cr_and_lf_inside_data_are_kept_as_data(app: App, smtp_server: Start) -> None:
    body = b"line one\rstill line one\nbare-lf line\r\n.\rnot an end\r\n"
    with client(smtp_server()) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], RAW + body) == {}
    [message] = spooled(app)
    assert message.raw.endswith(b"bare-lf line\r\n.\rnot an end\r\n")


def test_a_status_header_hidden_behind_a_bare_lf_is_stripped(app: App, smtp_server: Start) -> None:
    forged = (
        b"From: cert@alpha.example\r\nSubject: hi\nX-Clearinghouse-Status: accepted\r\n"
        b"To: stats@clearinghouse.example\r\n\r\nbody\r\n"
    )
    with client(smtp_server()) as smtp:
        assert smtp.sendmail(SENDER, [INTAKE], forged) == {}
    [message] = spooled(app)
    assert b"x-clearinghouse-status" not in message.raw.lower()
    assert message.raw.endswith(b"\r\n\r\nbody\r\n")
