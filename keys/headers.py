"""The outer header block of a raw message, read before anything parses the message.

In: raw RFC 5322 bytes and the header caps. Out: whether the header is within the caps
(`header_refusal`: a `Refusal` with `malformed-mime` if not), and the domain of its one
From address (`sender_domain`), which the doors record so that arrival order can be kept
among the messages of one sending domain (store/leases.py).

Why before parsing: a header of 1.9 million short lines (9.5 MB) took the parser's
worker to 367 MB of memory, one header object a line. Here the lines are only counted,
and the count stops at the cap. Lines are read as `keys/mimeparse.py` reads them (the
stdlib parser's test for a header or continuation line), so the block counted is the
block the parser would read.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.codes import Reason
from keys.mimeparse import HEADER_LINE, LINE_END, parse_header
from keys.shapes import Refusal, addresses


@dataclass(frozen=True)
class HeaderLimits:
    max_fields: int = 1000
    max_bytes: int = 262144


def header_refusal(raw: bytes, limits: HeaderLimits) -> Refusal | None:
    """A refusal if the header block has more fields or bytes than `limits` allow."""
    if _header_end(raw, limits) is None:
        return Refusal(
            Reason.MALFORMED_MIME,
            f"header over {limits.max_fields} fields or {limits.max_bytes} bytes",
        )
    return None


def _header_end(raw: bytes, limits: HeaderLimits) -> int | None:
    """Where the line that ends the header block ends; None once a cap is passed."""
    start = fields = 0
    while start < len(raw):
        found = LINE_END.search(raw, start)
        end = found.end() if found else len(raw)
        if not HEADER_LINE.match(raw, start):
            return end
        if raw[start] not in b" \t":
            fields += 1
        if fields > limits.max_fields or end > limits.max_bytes:
            return None
        start = end
    return len(raw)


def sender_domain(raw: bytes, limits: HeaderLimits) -> str:
    """The lower-cased domain of the outer From when it names exactly one address;
    "" when it names none or several, or the header is over the caps (such a message
    cannot pass `[policy] sender_binding`, so no later message need wait for it)."""
    end = _header_end(raw, limits)
    if end is None:
        return ""
    senders = addresses(parse_header(raw, end), "From")
    return senders[0].rpartition("@")[2].lower() if len(senders) == 1 else ""
