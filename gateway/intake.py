"""The spool door shared by SMTP, IMAP and `ingest`: raw bytes in, a committed id out.

Headers that imitate the gateway's own status headers (`X-Clearinghouse-*`) are dropped
before the message is stored, so nothing downstream can mistake them for ours. The
caller acknowledges (SMTP 250, IMAP move, exit 0) only after this returns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import StorageError
from store.spool import spool_message

STATUS_HEADER = re.compile(rb"^x-clearinghouse-[^:]*:", re.I)


def strip_status_headers(raw: bytes) -> bytes:
    """Remove `X-Clearinghouse-*` fields (with their continuation lines) from the header."""
    if b"x-clearinghouse-" not in raw.lower():
        return raw
    # Line by line with each line's own ending, because the email parser that reads the
    # message later ends a line at CRLF, LF or CR alike: splitting at one kind only would
    # let a mixed-ending header hide a status field (or end the header in the body).
    lines = raw.splitlines(keepends=True)
    kept: list[bytes] = []
    dropping = False
    for index, line in enumerate(lines):
        if not line.rstrip(b"\r\n"):  # the blank line: the body follows untouched
            kept.extend(lines[index:])
            break
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(STATUS_HEADER.match(line))
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def accept(
    engine: Engine,
    raw: bytes,
    channel: str,
    *,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    intake_key: str | None = None,
) -> tuple[int, bool]:
    """Store one raw message durably; returns (message id, newly stored)."""
    try:
        return spool_message(
            engine,
            strip_status_headers(raw),
            channel,
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            intake_key=intake_key,
        )
    except SQLAlchemyError as exc:
        raise StorageError(f"could not store the message: {type(exc).__name__}") from exc
