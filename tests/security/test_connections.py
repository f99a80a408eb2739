"""Connection exhaustion: the door holds a bounded number of connections, drops clients
slower than the minimum rate, and a storm of identical log events stays a few lines.

Real sockets on loopback throughout; clients come from several loopback addresses
(127.0.0.x) so that the caps per client address and overall can be told apart.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from smtp_support import HOST, RAW, SENDER, Start, client, spooled
from support import INTAKE, config_toml

from gateway.app import App
from gateway.log_repeats import RepeatLimit
from gateway.logs import setup_logging

ROOT = Path(__file__).resolve().parents[2]


def connect(port: int, source: str = HOST) -> tuple[socket.socket, bytes]:
    """A connection from `source` and the door's first line (220, or 421 and closed)."""
    sock = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
    return sock, sock.makefile("rb").readline()


@contextmanager
def held(port: int, count: int, source: str) -> Iterator[list[bytes]]:
    """`count` connections from `source`, held open; the first line each one got."""
    with ExitStack() as stack:
        lines = []
        for _ in range(count):
            sock, line = connect(port, source)
            stack.callback(sock.close)
            lines.append(line)
        yield lines


def test_an_idle_flood_from_one_address_holds_only_its_share(app: App, smtp_server: Start) -> None:
    port = smtp_server()  # the defaults: 100 connections, 10 per client address
    with held(port, 300, "127.0.0.2") as lines:
        greeted = [line for line in lines if line.startswith(b"220")]
        refused = [line for line in lines if line.startswith(b"421")]
        assert (len(greeted), len(refused)) == (10, 290)
        assert b"from your address" in refused[0]
        smtp = client(port)  # another address is served as ever
        assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
        smtp.quit()
    assert len(spooled(app)) == 1


def test_connections_beyond_the_overall_cap_get_421_until_one_closes(
    app: App, smtp_server: Start
) -> None:
    port = smtp_server(max_connections=5, max_connections_per_client=3)
    with held(port, 3, "127.0.0.2") as first, held(port, 2, "127.0.0.3") as second:
        assert all(line.startswith(b"220") for line in first + second)
        sock, line = connect(port, "127.0.0.4")
        assert line.startswith(b"421 4.7.0 Too many connections")
        assert sock.recv(1) == b""  # and closed
        sock.close()
    smtp = client(port)  # the held ones are gone: room again
    assert smtp.sendmail(SENDER, [INTAKE], RAW) == {}
    smtp.quit()


def test_a_client_trickling_commands_is_dropped(app: App, smtp_server: Start) -> None:
    """NOOP every 0.3 s is 20 bytes a second, below the minimum of 100: aiosmtpd's own
    timeout, reset by every command, would have kept the connection forever."""
    port = smtp_server(idle_timeout_seconds=2, min_bytes_per_second=100)
    sock, line = connect(port)
    assert line.startswith(b"220")
    reader = sock.makefile("rb")
    dropped = False
    with sock:
        for _ in range(100):  # 30 s: ten times what the allowance comes to
            try:
                sock.sendall(b"NOOP\r\n")
                answer = reader.readline()
            except OSError:
                answer = b""
            if not answer:
                dropped = True
                break
            assert answer.startswith(b"250")
            time.sleep(0.3)  # the attacker's pace, not a wait for an event
    assert dropped, "a client below the minimum rate was never dropped"
    # The same allowance is plenty for a client that sends at any normal speed.
    smtp = client(port)
    assert smtp.sendmail(SENDER, [INTAKE], RAW * 500) == {}
    smtp.quit()


def test_identical_events_are_counted_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    limit = RepeatLimit(burst=3, window=60, clock=lambda: now[0])
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        setup_logging("text")
        handler = root.handlers[0]
        handler.repeats = limit  # type: ignore[attr-defined]
        storm = logging.getLogger("asyncio")
        for _ in range(10_000):
            storm.error("socket.accept() out of system resource")
        other = logging.getLogger("gateway.pipeline")
        for message_id in range(5):  # differing events are all written
            other.info("message processed %s", message_id)
        now[0] = 61.0
        storm.error("socket.accept() out of system resource")
        handler.close()
    finally:
        root.handlers[:] = saved
    lines = capsys.readouterr().err.splitlines()
    storm_lines = [line for line in lines if "out of system resource" in line]
    assert len(storm_lines) == 3 + 1 + 1  # the burst, the count, the next window's first
    assert any("repeated=9997" in line for line in storm_lines)
    assert sum("message processed" in line for line in lines) == 5


def test_an_accept_storm_in_serve_grows_the_log_by_a_few_lines(app: App, tmp_path: Path) -> None:
    """`serve` with too few file descriptors for its connection cap: asyncio fails every
    accept() and logs it; the log stays small, and says how often it repeated."""
    port = _free_port()
    config = tmp_path / "storm.toml"
    config.write_text(
        config_toml(app.config)
        + "[smtp]\nmax_connections = 2000\nmax_connections_per_client = 2000\n"
        + '[logging]\nmax_repeats = 2\nrepeat_window_seconds = 2\n[metrics]\nlisten = ""\n'
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "--config",
                str(config),
                "serve",
                "--smtp",
                f"{HOST}:{port}",
            ],
            stdout=log,
            stderr=log,
            env=_child_env(),
            preexec_fn=_few_files,
        )
    try:
        _wait_listening(proc, port, log_path)
        with ExitStack() as stack:
            for _ in range(200):
                try:
                    sock = socket.create_connection((HOST, port), timeout=5)
                except OSError:
                    break
                stack.callback(sock.close)
            _wait_for(log_path, "repeated=")  # a window passed with events held back
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log_path.read_text()
    storm = [line for line in text.splitlines() if "out of system resource" in line]
    assert storm, text[-2000:]
    assert any("repeated=" in line for line in storm), text[-2000:]
    assert len(storm) < 20 and len(text) < 100_000  # without the limit: MB in seconds


def _wait_for(log_path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()[-2000:]
        time.sleep(0.1)


def _few_files() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLEARINGHOUSE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not listen: {log_path.read_text()[-2000:]}")


def test_a_relay_for_many_senders_is_not_capped_as_one_client(app: App, smtp_server: Start) -> None:
    # The MTA in front of the gateway: every team's mail comes from its one address.
    port = smtp_server(max_connections_per_client=3, relays=("127.0.0.2", "127.0.1.0/24"))
    with held(port, 6, "127.0.0.2") as relayed, held(port, 5, "127.0.1.9") as network:
        assert all(line.startswith(b"220") for line in relayed + network)
        with held(port, 4, "127.0.0.3") as direct:  # anyone else: capped as before
            assert [line[:3] for line in direct] == [b"220"] * 3 + [b"421"]
