"""gateway/intake/smtp.py's DATA phase against aiosmtpd's own: the same replies, the same bytes.

`IntakeSMTP` gathers DATA in one buffer instead of a bytearray a line; everything a
client sees must stay as aiosmtpd has it. Both servers run on loopback with a handler
that records what DATA delivered, and each case is written as raw bytes after DATA
(dot-stuffing, bare CR and LF, lines at and over the length limit, data over the size
limit, several messages on one connection).
"""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_support import HOST, free_port

from gateway.intake.smtp import IntakeController

SIZE_LIMIT = 4096

CASES = [
    b"Subject: x\r\n\r\nbody\r\n.\r\n",
    b".\r\n",
    b"..one leading dot\r\n...two\r\n. \r\n.x\r\n.\r\n",
    b"bare\rCR and bare\nLF\r\n\r\n.\r\n",
    b"x" * 999 + b"\r\n.\r\n",  # 1001 with its CRLF: the longest line taken
    b"x" * 1000 + b"\r\n.\r\n",
    b"x" * 5000 + b"\r\nafter\r\n.\r\n",  # longer than the reader's limit
    b"y" * 900 + b"\r\n" + b"z" * 900 + b"\r\n" + b"w" * 900 + b"\r\n.\r\n",
    (b"a" * 78 + b"\r\n") * 60 + b".\r\n",  # over the size limit
    (b"a" * 78 + b"\r\n") * 60 + b"x" * 3000 + b"\r\n.\r\n",  # too much, then too long
    b"x" * 3000 + b"\r\n" + (b"a" * 78 + b"\r\n") * 60 + b".\r\n",  # too long, then too much
]


class Recorder:
    """Records what each DATA delivered."""

    def __init__(self) -> None:
        self.contents: list[bytes | None] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.contents.append(envelope.original_content)
        return "250 OK recorded"


def start(controller_class: type[Controller]) -> tuple[Controller, Recorder, int]:
    recorder, port = Recorder(), free_port()
    controller = controller_class(
        recorder, hostname=HOST, port=port, data_size_limit=SIZE_LIMIT, decode_data=False
    )
    controller.start()
    return controller, recorder, port


@pytest.fixture
def servers() -> Iterator[dict[str, tuple[Recorder, int]]]:
    stock, intake = start(Controller), start(IntakeController)
    yield {"aiosmtpd": stock[1:], "intake": intake[1:]}
    stock[0].stop()
    intake[0].stop()


def reply(conn: socket.socket) -> bytes:
    """One SMTP reply, all its lines."""
    data = b""
    while not data.endswith(b"\r\n") or data.splitlines()[-1][3:4] == b"-":
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dialogue(port: int, bodies: list[bytes]) -> list[bytes]:
    """The replies to DATA and to each body, several messages on one connection."""
    replies = []
    with socket.create_connection((HOST, port), timeout=10) as conn:
        reply(conn)
        for command in (b"EHLO client.example", b"MAIL FROM:<a@example.org>"):
            conn.sendall(command + b"\r\n")
            reply(conn)
        for body in bodies:
            conn.sendall(b"RCPT TO:<b@example.org>\r\n")
            reply(conn)
            conn.sendall(b"DATA\r\n")
            replies.append(reply(conn))
            conn.sendall(body)
            replies.append(reply(conn))
            conn.sendall(b"MAIL FROM:<a@example.org>\r\n")
            reply(conn)
    return replies


@pytest.mark.parametrize("body", CASES)
def test_data_is_received_as_aiosmtpd_receives_it(
    servers: dict[str, tuple[Recorder, int]], body: bytes
) -> None:
    seen: dict[str, Any] = {}
    for name, (recorder, port) in servers.items():
        seen[name] = dialogue(port, [body, b"second message\r\n.\r\n"]), recorder.contents
    assert seen["intake"] == seen["aiosmtpd"]


def test_a_message_of_short_lines_is_held_about_once() -> None:
    """aiosmtpd holds a bytearray a line: 2-byte lines took some 25 times the message."""
    recorder, port = Recorder(), free_port()
    controller = IntakeController(recorder, hostname=HOST, port=port, decode_data=False)
    controller.start()
    body = b"a\r\n" * 200_000
    tracemalloc.start()
    try:
        dialogue(port, [body + b".\r\n"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        controller.stop()
    assert recorder.contents == [body]
    assert peak < 4 * len(body)  # what is sent, what is received, and some slack
