"""One logged-in IMAP connection for the door: TLS always verified, errors named.

In: `[imap]` of the configuration. Out: an imapclient `IMAPClient`, logged in, or an
`ImapError` that says what failed and what to do (certificate not trusted, server
unreachable, login refused). A silent server cannot hang the door (`SOCKET_TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from contract.errors import ConfigError, ImapError
from gateway.config import ImapConfig

SOCKET_TIMEOUT = 30.0  # seconds; a silent server must not hang the door


def connect(cfg: ImapConfig) -> IMAPClient:
    """A logged-in client for `cfg`; ImapError naming the problem if there is none."""
    password = cfg.read_password()
    where = f"{cfg.host}:{cfg.port}"
    try:
        client = _open(cfg)
    except ssl.SSLCertVerificationError as exc:
        raise ImapError(
            f"IMAP server {where}: TLS certificate not trusted ({exc.verify_message}); "
            "if it is right, give its CA in [imap] ca_file"
        ) from None
    except (OSError, IMAPClientError) as exc:
        raise ImapError(f"cannot connect to IMAP server {where}: {describe_error(exc)}") from None
    try:
        client.login(cfg.username, password)
    except LoginError as exc:
        close(client)
        raise ImapError(
            f"IMAP login as {cfg.username!r} at {where} failed: {describe_error(exc)}"
        ) from None
    except (OSError, IMAPClientError) as exc:
        close(client)
        raise ImapError(f"IMAP server {where} dropped the login: {describe_error(exc)}") from None
    return client


def _open(cfg: ImapConfig) -> IMAPClient:
    context = _tls_context(cfg) if cfg.security != "none" else None
    client = IMAPClient(
        cfg.host,
        port=cfg.port,
        ssl=cfg.security == "tls",
        ssl_context=context,
        timeout=SOCKET_TIMEOUT,
    )
    if cfg.security == "starttls":
        try:
            client.starttls(context)  # raises when the server does not offer STARTTLS
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
    return client


def _tls_context(cfg: ImapConfig) -> ssl.SSLContext:
    """Verification always on: system CAs, plus `ca_file` for a private or self-signed one."""
    context = ssl.create_default_context()
    if cfg.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(cfg.ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"[imap] ca_file {cfg.ca_file}: {reason}") from None
    return context


def close(client: IMAPClient) -> None:
    """Log out if the connection still works; drop it either way."""
    try:
        client.logout()
    except Exception:  # already gone: nothing left to tell the server
        with contextlib.suppress(Exception):
            client.shutdown()


def describe_error(exc: BaseException) -> str:
    """An exception's message, without the b'...' that imaplib leaves around server text."""
    text = str(exc)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        return text[2:-1]
    return text or type(exc).__name__
