"""The SMTP door (aiosmtpd): accept mail for the intake addresses, store it, then say 250.

RCPT outside the intake addresses gets 550, more than `max_recipients` gets 452, DATA
over `max_message_bytes` gets 552 (aiosmtpd's size limit), and 250 is sent only after
the raw bytes are committed to the spool; a storage failure answers 451 so the client
retries. Internal errors are logged, never told to the client (aiosmtpd's default
would echo the exception text).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.app import App
from gateway.intake import accept

log = logging.getLogger(__name__)


class IntakeHandler:
    """aiosmtpd handler implementing only the hooks the intake needs."""

    def __init__(self, app: App, on_stored: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.intake = {a.lower() for a in app.config.clearinghouse.intake_addresses}
        self.max_recipients = app.config.smtp.max_recipients
        self.on_stored = on_stored

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
        loop = asyncio.get_running_loop()
        try:
            message_id, _ = await loop.run_in_executor(
                None,
                lambda: accept(
                    self.app.engine,
                    raw,
                    "smtp",
                    envelope_from=envelope.mail_from,
                    envelope_to=list(envelope.rcpt_tos),
                ),
            )
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
    return Controller(
        IntakeHandler(app, on_stored), hostname=host, port=port, server_hostname=host, **kwargs
    )
