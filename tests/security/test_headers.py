"""Header-heavy mail: 9.5 MB of 1.9 million header lines costs neither door nor worker.

At SMTP the header is counted as its lines arrive and refused with 552 once over
`[limits] max_header_fields` or `max_header_bytes`; a message that comes in by `ingest`
(or IMAP: the same spool) is stored, since nothing accepted may be lost, and the worker
quarantines it as `malformed-mime` before the MIME parser holds one object per line.
Memory is measured with tracemalloc around each step.
"""

from __future__ import annotations

import socket
import tracemalloc

from pipeline_support import process
from smtp_support import HOST, RAW, SENDER, Start, client, spooled
from support import INTAKE, with_changes

from gateway.app import App

LINES = 1_900_000
HEAVY = b"A:b\r\n" * LINES + b"From: x@y.example\r\n\r\nbody\r\n"  # 9.5 MB of header
assert len(HEAVY) > 9_400_000


def dialogue(port: int, data: bytes) -> bytes:
    """One message over a raw socket, sent without copying it; the reply to its end."""
    with socket.create_connection((HOST, port), timeout=60) as conn:
        lines = conn.makefile("rb")
        lines.readline()
        for command in (
            b"EHLO c.example",
            b"MAIL FROM:<a@example.org>",
            f"RCPT TO:<{INTAKE}>".encode(),
            b"DATA",
        ):
            conn.sendall(command + b"\r\n")
            while lines.readline()[3:4] == b"-":  # the lines of a multi-line reply
                pass
        view = memoryview(data)
        for start in range(0, len(view), 1 << 16):
            conn.sendall(view[start : start + (1 << 16)])
        conn.sendall(b".\r\n")
        return lines.readline()


def test_smtp_refuses_a_header_of_millions_of_lines_and_holds_none_of_it(
    app: App, smtp_server: Start
) -> None:
    port = smtp_server()
    tracemalloc.start()
    try:
        reply = dialogue(port, HEAVY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reply.startswith(b"552 5.3.4"), reply
    assert spooled(app) == []
    assert peak < len(HEAVY) // 4, f"the door held {peak} bytes"
    smtp = client(port)  # the session after it is served as ever
    assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    smtp.quit()


def test_an_ingested_header_heavy_message_is_kept_and_quarantined_cheaply(app: App) -> None:
    tracemalloc.start()
    try:
        outcome = process(app, HEAVY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome == ("quarantined", "malformed-mime")
    # The raw bytes (read back from the database) and a little more: not a parse.
    assert peak < 3 * len(HEAVY), f"the worker held {peak} bytes"


def test_the_caps_are_configurable(app: App, smtp_server: Start) -> None:
    header = b"".join(b"X-Trace-%d: hop\r\n" % i for i in range(1500))
    message = header + b"From: x@y.example\r\n\r\nbody\r\n"
    assert process(app, message) == ("quarantined", "malformed-mime")
    roomy = App(with_changes(app.config, limits={"max_header_fields": 2000}))
    try:
        assert process(roomy, message) == ("quarantined", "not-encrypted")  # read as usual
    finally:
        roomy.engine.dispose()
    port = smtp_server()
    assert dialogue(port, message).startswith(b"552")
