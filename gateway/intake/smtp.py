"""The SMTP door (aiosmtpd): accept mail for the intake addresses, store it, then say 250.

RCPT outside the intake addresses gets 550, more than `max_recipients` gets 452, DATA
over `max_message_bytes` gets 552 (aiosmtpd's size limit), a header over the `[limits]`
header caps 552, a client over its hourly quota 452, and 250 is sent only after
the raw bytes are committed to the spool; a storage failure answers 451 so the client
retries. Internal errors are logged, never told to the client (aiosmtpd's default
would echo the exception text). Connections beyond `[smtp] max_connections` (overall or
from one client) get 421, and a client slower than `min_bytes_per_second` is dropped
after `idle_timeout_seconds` (gateway/intake/smtp_guard.py).

The DATA phase is aiosmtpd's, except that the message is gathered in one buffer: aiosmtpd
keeps each line as its own bytearray until the end (about 60 bytes of overhead a line),
so a 10 MiB message of 80-character lines took 30 MiB, and one of two-character lines
some 370 MiB, from anyone who can connect.
"""

from __future__ import annotations

import asyncio
import io
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from sqlalchemy.exc import SQLAlchemyError

from gateway.app import App
from gateway.intake.smtp_guard import (
    HEADER_TOO_LARGE,
    OVER_QUOTA,
    Connections,
    DoorLimits,
    HeaderCount,
    Pace,
    client_key,
    door_limits,
    file_limit_problem,
)
from gateway.logs import event
from gateway.spool import GroupSpooler
from store.retention import stored_by_client
from store.spool import Incoming

log = logging.getLogger(__name__)


class IntakeHandler:
    """aiosmtpd handler implementing only the hooks the intake needs."""

    def __init__(self, app: App, on_stored: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.intake = {a.lower() for a in app.config.clearinghouse.intake_addresses}
        self.max_recipients = app.config.smtp.max_recipients
        self.on_stored = on_stored
        self.spooler = GroupSpooler(app.engine, app.header_limits)
        self.quota = app.config.smtp.max_bytes_per_client_per_hour
        self.message_quota = app.config.smtp.max_messages_per_client_per_hour
        self.limits = door_limits(app.config.smtp, app.header_limits)

    def close(self) -> None:
        """Store what is waiting to be stored, and stop storing."""
        self.spooler.close()

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if await self._over_quota(session):
            return OVER_QUOTA
        envelope.mail_from = address  # what aiosmtpd does when there is no hook
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def _over_quota(self, session: Session, size: int = 0) -> bool:
        """Whether the client's messages or bytes stored this hour, with one of `size`
        bytes more, pass its quotas (at MAIL FROM, `size` 0: whether one is used up)."""
        if not (self.quota or self.message_quota):
            return False
        client = client_key(session.peer)
        if self.limits.relay(client):  # an MTA for many senders: its own limits apply
            return False
        loop = asyncio.get_running_loop()
        try:
            count, used = await loop.run_in_executor(
                None, stored_by_client, self.app.engine, client
            )
        except SQLAlchemyError:  # storing will fail too, and answer 451 itself
            log.warning("could not read the quota of %s", client, exc_info=True)
            return False
        over = bool(self.message_quota) and count >= self.message_quota  # this one: 1 more
        if self.quota:
            over |= used + size > self.quota if size else used >= self.quota
        if over:
            event(log, "SMTP client over its hourly quota", logging.WARNING, client=client)
        return over

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() not in self.intake:
            return "550 5.1.1 No such recipient here"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""  # bytes: decode_data is off
        if await self._over_quota(session, len(raw)):
            return OVER_QUOTA
        client = client_key(session.peer)
        rcpts = tuple(envelope.rcpt_tos)
        incoming = Incoming(raw, "smtp", envelope.mail_from, rcpts, client_address=client)
        try:
            message_id = await self.spooler.store(incoming)
        except Exception:
            log.exception("could not spool a message from %s", session.peer)
            return "451 4.3.0 Temporary failure, please try again later"
        if self.on_stored:
            try:
                self.on_stored(message_id)
            except Exception:  # stored is stored: a 4xx/5xx now would bring a resend
                log.exception("message %s stored, but waking the worker failed", message_id)
        return f"250 2.0.0 Queued as {message_id}"

    async def handle_exception(self, error: Exception) -> str:
        # Replaces aiosmtpd's default reply, which tells the client the exception text.
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"


class _TooLong(Exception):
    """DATA broke the line length limit (500, as aiosmtpd answers)."""


class _TooMuch(Exception):
    """DATA went past the size limit (552, as aiosmtpd answers)."""


class _HeaderTooLarge(Exception):
    """The message header went past the `[limits]` header caps (552)."""


class IntakeSMTP(SMTP):
    """aiosmtpd's server with a DATA phase that holds the message in one growing buffer.

    Same dialogue as aiosmtpd 1.4 (replies, limits, dot-unstuffing, the DATA hook);
    bytes only, which is how the intake runs it. With `connections`, it also keeps the
    door's caps (gateway/intake/smtp_guard.py): 421 beyond the connection caps, a pace
    below which the client is dropped, and the header caps.
    """

    def __init__(
        self, handler: Any, *, connections: Connections | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("decode_data"):
            raise ValueError("IntakeSMTP gathers bytes: decode_data must be off")
        super().__init__(handler, **kwargs)
        self._connections = connections or Connections(DoorLimits())
        self._pace = Pace(self._connections.limits)
        self._client: str | None = None  # set once counted in
        self._refusal: str | None = None  # the 421 line, for a connection over a cap

    # --- the door's caps: aiosmtpd's connection and timeout methods, extended ------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is None and self._refusal is None:  # not again after STARTTLS
            client = client_key(transport.get_extra_info("peername"))
            self._refusal = self._connections.admit(client)
            if self._refusal is None:
                self._client = client
            else:
                event(log, "SMTP connection refused", logging.WARNING, reply=self._refusal)
            self._pace = Pace(self._connections.limits)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._client is not None:
            self._connections.release(self._client)
            self._client = None
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        self._pace.received += len(data)
        super().data_received(data)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Not reset by traffic (aiosmtpd resets it at every command): the pace decides."""
        if self._timeout_handle is None:
            self._timeout_handle = self.loop.call_at(self._pace.deadline(), self._timeout_cb)

    def _timeout_cb(self) -> None:
        if not self._pace.over():
            self._timeout_handle = self.loop.call_at(self._pace.deadline(), self._timeout_cb)
            return
        event(log, "SMTP client too slow; dropped", logging.INFO, client=self._client)
        super()._timeout_cb()  # type: ignore[no-untyped-call]  # aiosmtpd: untyped

    async def _handle_client(self) -> None:
        if self._refusal is not None:  # instead of the greeting: 421, and close
            await self.push(self._refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    # --- the DATA phase -----------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if self.envelope is None or not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await self._receive()
        except (_TooLong, _TooMuch, _HeaderTooLarge) as breach:
            self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: untyped
            if isinstance(breach, _TooLong):
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            elif isinstance(breach, _HeaderTooLarge):
                await self.push(HEADER_TOO_LARGE)
            else:
                await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        storing = time.monotonic()
        status = await self._call_handler_hook("DATA")
        self._pace.excused += time.monotonic() - storing  # the door's own time
        self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: untyped
        await self.push("250 OK" if status is MISSING else status)

    async def _receive(self) -> bytes:
        """The message up to the lone dot, dot-unstuffed; over a limit, reads on, then raises.

        As in aiosmtpd (RFC 5321 4.2.5), a refusal waits until the client has sent
        everything; from the first breach on nothing more is kept.
        """
        buffer, size, limit = io.BytesIO(), 0, self.data_size_limit or 0  # 0: none
        header = HeaderCount(self._connections.limits.headers)
        breach: _TooLong | _TooMuch | _HeaderTooLarge | None = None
        partial: list[bytes] = []  # the line so far, when it comes in over several reads
        while self.transport is not None:
            line, overran = await self._read_line()
            if not partial and line == b".\r\n":
                break
            size += len(line)
            if breach is None and (overran or 0 < limit < size):
                breach = _TooLong() if overran else _TooMuch()
                buffer = io.BytesIO()  # let go of what was gathered
            partial.append(b"" if breach else line)  # after a breach: only "a line is open"
            if not line.endswith(b"\r\n"):
                continue
            whole, partial = b"".join(partial), []
            if breach is None and len(whole) > self.line_length_limit:
                breach, buffer = _TooLong(), io.BytesIO()
            if breach is None and header.over(whole):
                breach, buffer = _HeaderTooLarge(), io.BytesIO()
            if breach is None:
                buffer.write(memoryview(whole)[1:] if whole.startswith(b".") else whole)
        if breach is not None:
            raise breach
        return buffer.getvalue()  # the buffer's own bytes, trimmed to size: not a copy

    async def _read_line(self) -> tuple[bytes, bool]:
        """One line with its CRLF, or (True) what a line longer than the reader takes was."""
        try:
            return await self._reader.readuntil(b"\r\n"), False
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.LimitOverrunError as exc:
            return await self._reader.read(exc.consumed), True


class IntakeController(Controller):
    """A Controller whose server is `IntakeSMTP`, every connection counted in one place."""

    connections: Connections | None = None  # set by make_controller

    def factory(self) -> IntakeSMTP:
        return IntakeSMTP(self.handler, connections=self.connections, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert)
        close = getattr(self.handler, "close", None)  # handlers are duck-typed in aiosmtpd
        if close is not None:
            close()


def _tls_context(app: App) -> ssl.SSLContext | None:
    smtp = app.config.smtp
    if not smtp.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(smtp.tls_cert, smtp.tls_key or None)
    return context


def make_controller(
    app: App, host: str, port: int, on_stored: Callable[[int], None] | None = None
) -> Controller:
    """A controller that runs the SMTP server in its own thread (start()/stop())."""
    smtp = app.config.smtp
    tls = _tls_context(app)
    kwargs: dict[str, Any] = {
        "data_size_limit": smtp.max_message_bytes,
        "decode_data": False,
        "ident": "Clearinghouse ESMTP",
    }
    if tls is not None:
        kwargs |= {"tls_context": tls, "require_starttls": smtp.require_starttls}
    controller = IntakeController(
        IntakeHandler(app, on_stored), hostname=host, port=port, server_hostname=host, **kwargs
    )
    controller.connections = Connections(door_limits(app.config.smtp, app.header_limits))
    problem = file_limit_problem(controller.connections.limits)
    if problem:
        log.warning("%s", problem)
    return controller
