"""Building blocks for hostile messages: what an attacker's tools would produce.

The gateway's own code never runs gpg outside keys/gpg.py; an attacker is not bound by
that, so these helpers drive the gpg command line directly to make packets that a
well-behaved client never would (two signers, crafted literal file names, cake
messages, bombs).
"""

from __future__ import annotations

import base64
import os
import smtplib
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from smtp_support import HOST, free_port
from support import INTAKE, TeamClient

from gateway.app import App
from gateway.delivery import MaildirTransport
from gateway.intake.smtp import make_controller
from gateway.spool import accept
from gateway.worker import Worker
from keys.wrap import encrypted_envelope
from store import spool
from store.db import open_session
from store.monitoring import list_outbox
from store.submissions import SubmissionRow, list_submissions


def gpg(home: Path, *args: str, data: bytes = b"") -> bytes:
    """Run gpg in `home` and return stdout; fails the test on a non-zero exit."""
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always", *args],
        input=data,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return result.stdout


def envelope(team: TeamClient, armored: bytes | str, *, sender: str | None = None) -> bytes:
    """Wrap OpenPGP data in an RFC 3156 multipart/encrypted message from `team`."""
    text = armored.decode("ascii") if isinstance(armored, bytes) else armored
    return encrypted_envelope([("From", sender or team.email), ("To", INTAKE)], text)


def mime_text(body: str, *, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers] + ["Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def multipart(subtype: str, parts: Sequence[bytes], boundary: str = "b0undary") -> bytes:
    out = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def encrypt_to_gateway(
    team: TeamClient, plaintext: bytes, *, sign_with: Sequence[str] = (), extra: Sequence[str] = ()
) -> bytes:
    """Encrypt (and optionally sign, with any number of keys) with the team's keyring."""
    args = ["--armor", "--recipient", team.gateway_fingerprint, *extra, "--encrypt"]
    for fpr in sign_with:
        args = ["--local-user", fpr, *args]
    if sign_with:
        args.append("--sign")
    return gpg(team.gpg.home, *args, data=plaintext)


def process_all(app: App, raws: Sequence[bytes]) -> list[tuple[str, str | None]]:
    """Spool each of `raws` as an MTA would, run the worker once; (state, reason) of each."""
    ids = [accept(app.engine, raw, "ingest")[0] for raw in raws]
    counts = Worker(app, transport=_Refuse()).run_once()
    assert "error" not in counts, "the pipeline raised"
    with open_session(app.engine) as s:
        messages = [spool.get_message(s, message_id) for message_id in ids]
        return [(m.state, m.reason) for m in messages if m is not None]


def process(app: App, raw: bytes) -> tuple[str, str | None]:
    """Spool `raw` as an MTA would and run the worker; returns (state, reason)."""
    [outcome] = process_all(app, [raw])
    return outcome


class _Refuse:
    def deliver(self, recipient: str, raw: bytes, key: str) -> None:
        raise AssertionError("these tests never deliver mail")


def outbox_entries(app: App) -> list[tuple[str, str, bytes]]:
    with open_session(app.engine) as s:
        return [(e.kind, e.recipient, e.raw) for e in list_outbox(s)]


def stored(app: App) -> list[SubmissionRow]:
    with open_session(app.engine) as s:
        return list_submissions(s)


def assert_refused(app: App, raw: bytes, reason: str, *, state: str = "quarantined") -> None:
    """The message ends refused with `reason`; nothing stored; no reply to anyone."""
    assert process(app, raw) == (state, reason)
    assert stored(app) == []
    assert outbox_entries(app) == [], "an unauthenticated message got a reply"


# --- floods of key packets (issue 18, item 2) ----------------------------------------------


def encryption_key_id(app: App) -> bytes:
    """The 8-byte key ID of the gateway's encryption subkey, as PKESK packets name it."""
    details = app.gpg.details(app.identity.fingerprint)
    assert details is not None
    [subkey] = [s for s in details.subkeys if "e" in s.capabilities]
    return bytes.fromhex(subkey.fingerprint[-16:])


def random_pkesk(key_id: bytes) -> bytes:
    """A version 3 PKESK for an ECDH (cv25519) key: a random ephemeral point and a random
    wrapped session key. gpg-agent does one X25519 operation for it, then fails."""
    body = (
        bytes([3])
        + key_id
        + bytes([18])  # ECDH
        + (263).to_bytes(2, "big")
        + b"\x40"
        + os.urandom(32)  # the ephemeral point, an MPI of 263 bits
        + bytes([48])
        + os.urandom(48)  # the wrapped session key
    )
    return bytes([0xC1, len(body)]) + body  # new format, tag 1, one-octet length


def pkesk_flood(key_id: bytes, size: int, tail: bytes) -> bytes:
    """Random PKESK packets for `key_id` up to about `size` bytes, then `tail` (a real
    message's packets), so gpg tries every one of them before the one that works."""
    one = len(random_pkesk(key_id))
    return b"".join(random_pkesk(key_id) for _ in range(max(1, (size - len(tail)) // one))) + tail


def nested_layer(team: TeamClient, inner: bytes) -> bytes:
    """`inner` OpenPGP packets encrypted to the gateway as they are (no literal packet
    around them): gpg decrypts this layer and then processes `inner` itself."""
    args = ["--recipient", team.gateway_fingerprint, "--compress-algo", "none"]
    return gpg(team.gpg.home, "--no-literal", *args, "--encrypt", data=inner)


def binary_envelope(sender: str, packets: bytes) -> bytes:
    """multipart/encrypted from `sender` carrying binary OpenPGP data, base64-encoded."""
    encoded = base64.encodebytes(packets).replace(b"\n", b"\r\n")
    head = (
        f"From: {sender}\r\nTo: {INTAKE}\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        ' boundary="enc"\r\n\r\n--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\n'
        "Version: 1\r\n\r\n--enc\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode() + encoded + b"\r\n--enc--\r\n"


def binary_report(team: TeamClient, report: bytes) -> bytes:
    """`report` signed by the team and encrypted to the gateway, as binary packets."""
    args = ["--local-user", team.fingerprint, "--recipient", team.gateway_fingerprint]
    return gpg(team.gpg.home, *args, "--sign", "--encrypt", data=report)


# --- a running gateway: the SMTP door and the worker's threads, as `serve` runs them -------


@contextmanager
def running_gateway(app: App, threads: int = 4) -> Iterator[int]:
    """The SMTP door on a free loopback port (yielded) and `threads` worker threads."""
    stop, wake = threading.Event(), threading.Event()
    worker = Worker(app, MaildirTransport(app.config.outbound.maildir), threads=threads)
    port = free_port()
    controller = make_controller(app, HOST, port, on_stored=lambda _id: wake.set())
    controller.start()
    runner = threading.Thread(target=worker.run, args=(stop, wake), kwargs={"idle_seconds": 1})
    runner.start()
    try:
        yield port
    finally:
        stop.set()
        wake.set()
        runner.join()
        controller.stop()


def send(port: int, sender: str, raw: bytes) -> int:
    """Send `raw` over SMTP; the id the door says it stored it as."""
    with smtplib.SMTP(HOST, port, timeout=120) as smtp:
        smtp.ehlo("client.example")
        smtp.mail(sender)
        smtp.rcpt(INTAKE)
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return int(reply.decode().rsplit(" ", 1)[1])


def state_of(app: App, message_id: int) -> tuple[str, str | None]:
    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id, raw=False)
        assert message is not None
        return message.state, message.reason


def wait_final(app: App, message_id: int, *, since: float, within: float) -> float | None:
    """Seconds from `since` (a time.monotonic()) until `message_id` leaves `received`;
    None if it is still there `within` seconds after `since` (the test then fails on its
    bound, without waiting longer)."""
    while time.monotonic() - since < within:
        if state_of(app, message_id)[0] != "received":
            return time.monotonic() - since
        time.sleep(0.02)  # polling the database for an event in another thread
    return None
