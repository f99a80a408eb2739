"""Outbound delivery: hand one finished outgoing message to a maildir or an SMTP relay.

In: the envelope recipient (always an address from the registry), the raw RFC 5322
bytes (already signed and encrypted), and a `key` that names this outgoing message for
good (the outbox entry's id). Out: nothing, or a `DeliveryError`. A transport makes one
attempt; retries, backoff and bookkeeping belong to the outbox, which is also why
delivering the same key again must be harmless where the transport can ensure it.

The outbox gets its transport from `make_transport`, and tests pass their own: anything
with a `deliver` method of the `Transport` shape will do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import smtplib
import ssl
from pathlib import Path
from typing import Protocol

from contract.errors import ConfigError, DeliveryError
from gateway.addresses import is_address, parse_relay_url
from gateway.config import OutboundConfig

__all__ = [
    "MaildirTransport",
    "SmtpRelayTransport",
    "Transport",
    "maildir_name",
    "make_transport",
]


class Transport(Protocol):
    """Where outgoing mail goes. Raises `DeliveryError` when it could not hand it over."""

    def deliver(self, recipient: str, raw: bytes, key: str) -> None: ...


def make_transport(cfg: OutboundConfig, sender: str) -> Transport:
    """The transport `[outbound]` asks for; `sender` is the envelope sender for SMTP."""
    if cfg.transport == "smtp":
        return SmtpRelayTransport(cfg.relay, sender)
    return MaildirTransport(cfg.maildir)


def _check_recipient(recipient: str) -> None:
    # Refused before any I/O: a CR/LF here would smuggle SMTP commands or headers.
    if not (recipient.isascii() and is_address(recipient)):
        raise DeliveryError(f"recipient {recipient!r} is not a plain address", permanent=True)


class MaildirTransport:
    """Writes each message into a maildir's new/, as a local delivery agent would.

    The file name derives from `key`, so a second delivery of the same key (after a
    crash between writing and the outbox recording success) finds the first one and
    writes nothing. The envelope recipient is recorded in a leading `Delivered-To:`
    header, the maildir convention, because the maildir has no envelope of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, recipient: str, raw: bytes, key: str) -> None:
        _check_recipient(recipient)
        name = maildir_name(key)
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            if self._holds(name):
                return
            newline = b"\r\n" if b"\r\n" in raw[: raw.find(b"\n") + 1] else b"\n"
            data = b"Delivered-To: " + recipient.encode("ascii") + newline + raw
            self._write_new(name, data)
        except OSError as exc:
            raise DeliveryError(f"maildir {self.path}: {exc.strerror or exc}") from exc

    def _holds(self, name: str) -> bool:
        """Already delivered: in new/, or moved to cur/ by a reader (maybe with flags)."""
        if (self.path / "new" / name).exists():
            return True
        with os.scandir(self.path / "cur") as entries:
            return any(e.name == name or e.name.startswith(name + ":") for e in entries)

    def _write_new(self, name: str, data: bytes) -> None:
        # Unique tmp name, so that two writers of the same key never share a tmp file.
        tmp = self.path / "tmp" / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(fd, "wb", closefd=True) as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / "new" / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)


def maildir_name(key: str) -> str:
    """A maildir file name for `key`: readable, without '/' or ':', unique per key."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", key)[:64] or "message"
    return f"{readable}.{hashlib.sha256(key.encode('utf-8')).hexdigest()[:20]}"


class SmtpRelayTransport:
    """Hands each message to an SMTP relay: smtp:// (STARTTLS when offered) or smtps://.

    Certificates are always verified. On a loopback connection STARTTLS is skipped: the
    traffic never leaves the host, and a local MTA typically offers STARTTLS with a
    self-signed certificate (Debian's Postfix does), which verification would refuse
    forever. Credentials from the URL are sent only over TLS or to a loopback peer.
    """

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        try:
            self._relay = parse_relay_url(url)
        except ValueError as exc:
            raise ConfigError(f"[outbound] relay: {exc}") from None
        self._sender = sender
        self._timeout = timeout
        self._context = ssl_context or ssl.create_default_context()
        self._where = f"relay {self._relay.host}:{self._relay.port}"

    def deliver(self, recipient: str, raw: bytes, key: str) -> None:
        # `key` is not used: a relay cannot be asked whether it already has a message, so
        # a crash between its 250 and the outbox's commit means one duplicate at worst.
        _check_recipient(recipient)
        # SMTP lines end in CRLF; a bare LF is refused by strict servers (SMTP smuggling).
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
        try:
            with self._connect() as smtp:
                self._login(smtp, encrypted=self._secure(smtp))
                smtp.sendmail(self._sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._refused("recipient refused", code, text) from None
        except smtplib.SMTPDataError as exc:
            raise self._refused("message refused", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPAuthenticationError as exc:
            # The server's text is left out: some echo what they were sent.
            raise DeliveryError(f"{self._where}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPResponseException as exc:
            raise self._refused("error", exc.smtp_code, exc.smtp_error, permanent=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{self._where}: {_describe(exc)}") from None

    def _connect(self) -> smtplib.SMTP:
        relay = self._relay
        if relay.implicit_tls:
            return smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=self._timeout, context=self._context
            )
        return smtplib.SMTP(relay.host, relay.port, timeout=self._timeout)

    def _secure(self, smtp: smtplib.SMTP) -> bool:
        """EHLO, then STARTTLS where it is offered and useful; True if now encrypted."""
        smtp.ehlo()
        if self._relay.implicit_tls:
            return True
        if _peer_is_loopback(smtp) or not smtp.has_extn("starttls"):
            return False
        smtp.starttls(context=self._context)
        smtp.ehlo()
        return True

    def _login(self, smtp: smtplib.SMTP, *, encrypted: bool) -> None:
        relay = self._relay
        if relay.username is None or relay.password is None:
            return
        if not encrypted and not _peer_is_loopback(smtp):
            raise DeliveryError(
                f"{self._where}: offers no STARTTLS; refusing to send the password in clear"
            )
        smtp.login(relay.username, relay.password)

    def _refused(
        self, what: str, code: int, text: bytes | str, *, permanent: bool | None = None
    ) -> DeliveryError:
        reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        reply = " ".join(reply.split())[:200]
        if permanent is None:
            permanent = 500 <= code < 600
        return DeliveryError(f"{self._where}: {what}: {code} {reply}", permanent=permanent)


def _peer_is_loopback(smtp: smtplib.SMTP) -> bool:
    """Judged by the address actually connected to, not by the name in the URL."""
    if smtp.sock is None:
        return False
    address = ipaddress.ip_address(str(smtp.sock.getpeername()[0]).split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
