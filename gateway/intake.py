"""The spool door shared by SMTP, IMAP and `ingest`: raw bytes in, a committed id out.

Headers that imitate the gateway's own status headers (`X-Clearinghouse-*`) are dropped
before the message is stored, so nothing downstream can mistake them for ours. The
caller acknowledges (SMTP 250, IMAP move, exit 0) only after this returns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.errors import StorageError
from store.spool import Incoming, spool_message, spool_messages

STATUS_HEADER = re.compile(rb"^x-clearinghouse-[^:]*:", re.I)
STATUS_ANYWHERE = re.compile(rb"x-clearinghouse-", re.I)
# Where a blank line can begin after the first: a line ends (LF, or a CR not followed by
# LF) and the next line is empty (starts with CR or LF). A CR LF pair is one line end.
BLANK_LINE_AFTER = re.compile(rb"\n\r|\n\n|\r\r")


def accept_many(engine: Engine, incoming: Sequence[Incoming]) -> list[int]:
    """Store several raw messages durably in one commit (all or none); returns their ids."""
    stripped = [replace(one, raw=strip_status_headers(one.raw)) for one in incoming]
    try:
        return spool_messages(engine, stripped)
    except SQLAlchemyError as exc:
        raise StorageError(f"could not store the messages: {type(exc).__name__}") from exc


def strip_status_headers(raw: bytes) -> bytes:
    """Remove `X-Clearinghouse-*` fields (with their continuation lines) from the header.

    Only the header is looked at, in place, and the message is copied only when a field
    is removed: messages of 10 MiB come through here, and the door holds them as it is.
    """
    end = _header_end(raw)
    if not STATUS_ANYWHERE.search(raw, 0, end):
        return raw
    return b"".join([*_without_status_fields(raw[:end]), memoryview(raw)[end:]])


def _header_end(raw: bytes) -> int:
    """Where the first blank line begins (the header ends there), else the end of `raw`.

    Lines end at CRLF, LF or CR alike, as for the email parser that reads the message
    later: splitting at one kind only would let a mixed-ending header hide a status field
    (or end the header in the body).
    """
    if raw[:1] in (b"\r", b"\n"):
        return 0
    found = BLANK_LINE_AFTER.search(raw)
    return found.start() + 1 if found else len(raw)


def _without_status_fields(header: bytes) -> list[bytes]:
    """The header's lines, each with its own ending, except status fields."""
    kept: list[bytes] = []
    dropping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(STATUS_HEADER.match(line))
        if not dropping:
            kept.append(line)
    return kept


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
