"""Mail addresses, HOST:PORT listen addresses and SMTP relay URLs, checked and split.

Used by the configuration, the outbound transports and `compose`. ValueError messages
never echo a relay URL (it may hold a password).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_ADDRESS = re.compile(
    r"[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


_HOST_PORT = re.compile(
    r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<p6>\d{1,5})|(?P<h>[^\s:\[\]]+):(?P<p>\d{1,5})"
)


def is_address(text: str) -> bool:
    """A bare `local@domain` address (no display name, no angle brackets)."""
    return _ADDRESS.fullmatch(text) is not None


def split_host_port(text: str) -> tuple[str, int]:
    """Split `HOST:PORT` or `[IPV6]:PORT` into (host, port); ValueError if it is neither."""
    match = _HOST_PORT.fullmatch(text)
    if match is None or int(match["p6"] or match["p"]) > 65535:
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, found {text!r}")
    return match["v6"] or match["h"], int(match["p6"] or match["p"])


@dataclass(frozen=True)
class RelayURL:
    """A parsed `[outbound] relay`; the password never appears in its repr."""

    implicit_tls: bool  # smtps://
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_relay_url(url: str) -> RelayURL:
    """Parse smtp[s]://[user:pass@]host[:port]; ValueError messages never echo the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("expected smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname or port == 0:
        raise ValueError("expected smtp[s]://[user:pass@]host[:port], with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected nothing after host[:port]")
    if (parts.username is None) != (parts.password is None):
        raise ValueError("give both user and password (user:pass@), or neither")
    return RelayURL(
        implicit_tls=parts.scheme == "smtps",
        host=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
