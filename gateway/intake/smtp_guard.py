"""What one SMTP client may cost the door: connections, time, header, bytes per hour.

In: the `[smtp]` and `[limits]` settings, and what the door sees of each connection
(its peer address, the bytes it sends, the time spent waiting for them). Out: decisions
the door acts on: admit a connection or answer 421 (`Connections`), drop a client whose
traffic is slower than the minimum rate (`Pace`), refuse a header that is too large
(`HeaderCount`, 552), and the client address a quota is counted under (`client_key`).

Why: 1,100 idle TCP connections exhausted the door's file descriptors, and an idle
timeout that any traffic reset let one byte every few seconds hold a connection
forever. Here the door holds at most `max_connections` (and `max_connections_per_client`
from one address), and a connection may wait for its client no longer than
`idle_timeout_seconds` plus the time its bytes earn at `min_bytes_per_second`.
"""

from __future__ import annotations

import ipaddress
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import SmtpConfig
from keys.headers import HeaderLimits
from keys.mimeparse import HEADER_LINE

TOO_MANY = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_YOU = "421 4.7.0 Too many connections from your address, try again later"
HEADER_TOO_LARGE = "552 5.3.4 Message header too large"
OVER_QUOTA = "452 4.3.1 Hourly quota of your address used up, try again later"


@dataclass(frozen=True)
class DoorLimits:
    """The door's caps, from `[smtp]` and `[limits]`."""

    max_connections: int = 100
    max_connections_per_client: int = 10
    idle_timeout_seconds: float = 60
    min_bytes_per_second: int = 1024
    headers: HeaderLimits = field(default_factory=HeaderLimits)
    # Relays for many senders (an MTA in front): no per-client cap or quota for them.
    relays: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def relay(self, client: str) -> bool:
        """Whether `client` (as `client_key` gives it) is one of the configured relays."""
        try:
            address = ipaddress.ip_network(client, strict=False)
        except ValueError:
            return False
        return any(
            address.version == net.version and address.subnet_of(net)  # type: ignore[arg-type]
            for net in self.relays
        )


def client_key(peer: Any) -> str:
    """The address a client is counted under: IPv4 as it is, IPv6 by its /64 (one
    host usually holds a whole /64, and could use a new address per connection)."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


FILES_BESIDE_CONNECTIONS = 256  # gpg, the database, logs, the IMAP door: not per client


def file_limit_problem(limits: DoorLimits) -> str | None:
    """Why the process's file limit cannot hold `max_connections`, if it cannot."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_connections + FILES_BESIDE_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    return (
        f"the file limit ({soft}) is below [smtp] max_connections + "
        f"{FILES_BESIDE_CONNECTIONS} ({needed}): raise LimitNOFILE (systemd) or ulimit -n, "
        "or lower max_connections"
    )


class Connections:
    """Open connections, overall and per client; used from the door's event loop only."""

    def __init__(self, limits: DoorLimits) -> None:
        self.limits = limits
        self.open: Counter[str] = Counter()

    def admit(self, client: str) -> str | None:
        """Count the connection in; or the 421 line to answer instead (not counted)."""
        if sum(self.open.values()) >= self.limits.max_connections:
            return TOO_MANY
        if self.open[client] >= self.limits.max_connections_per_client and not self.limits.relay(
            client
        ):
            return TOO_MANY_FROM_YOU
        self.open[client] += 1
        return None

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class Pace:
    """How long a connection may still wait for its client.

    The allowance is `idle_timeout_seconds` plus one second for every
    `min_bytes_per_second` bytes received; time the door spends on its own work (storing
    a message) is excused. A client below the rate runs out of allowance however often
    it sends a byte: traffic does not reset it.
    """

    def __init__(self, limits: DoorLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.start = clock()
        self.received = 0
        self.excused = 0.0

    def deadline(self) -> float:
        """When (on `clock`) the allowance runs out, for what was received so far."""
        earned = self.received / self.limits.min_bytes_per_second
        return self.start + self.excused + self.limits.idle_timeout_seconds + earned

    def over(self) -> bool:
        return self.clock() >= self.deadline()


class HeaderCount:
    """Counts the header lines of a DATA phase as they arrive, until the blank line."""

    def __init__(self, limits: HeaderLimits) -> None:
        self.limits = limits
        self.fields = 0
        self.bytes = 0
        self.done = False

    def over(self, line: bytes) -> bool:
        """Take one complete line (dot-unstuffed); True once the header is over a cap.

        The header ends where the parser's does (keys/mimeparse.py): at the first line
        that is neither a field nor a continuation, the blank line or a body line.
        """
        if self.done:
            return False
        if not HEADER_LINE.match(line):
            self.done = True
            return False
        self.bytes += len(line)
        if line[:1] not in (b" ", b"\t"):
            self.fields += 1
        return self.fields > self.limits.max_fields or self.bytes > self.limits.max_bytes


def door_limits(smtp: SmtpConfig, headers: HeaderLimits) -> DoorLimits:
    """The door's caps as `[smtp]` (and `[limits]`, for the header) set them."""
    return DoorLimits(
        max_connections=smtp.max_connections,
        max_connections_per_client=smtp.max_connections_per_client,
        idle_timeout_seconds=smtp.idle_timeout_seconds,
        min_bytes_per_second=smtp.min_bytes_per_second,
        headers=headers,
        relays=tuple(ipaddress.ip_network(r, strict=False) for r in smtp.relays),
    )
