"""The IMAP door (imapclient): fetch the configured mailbox into the spool, then file it away.

In: `[imap]` of the configuration. Out: each message of `folder` stored with `accept` and
only then moved to `processed_folder` (UID MOVE; COPY + \\Deleted + EXPUNGE where the
server lacks MOVE; \\Flagged + \\Seen where moving is impossible, so it stays in place).
A crash between storing and moving leaves the message where it was, and the next poll
recognises it by its intake key, `imap:USER@HOST/FOLDER:MESSAGE-ID:SHA256` of the fetched
bytes, instead of storing it twice. The same key makes two pollers on one mailbox store
a message once; a message the other poller moved away meanwhile is skipped ("vanished").

Bytes that are not an RFC 5322 message at all (see `looks_like_message`) are moved to
`failed_folder` with a log line, and never stored.

`poll_once` drains the folder once (`poll-imap --once`). `run_poller` keeps it drained
until told to stop: it waits in IDLE where the server offers it (leaving IDLE at least
every `poll_seconds` to drain anyway) and polls otherwise, and reconnects with backoff
(tenacity) after a dropped connection or a server restart. TLS certificates are always
verified, against the system CAs plus `ca_file`; `security = "none"` is loopback only
(enforced by the configuration).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from contract.errors import ConfigError, ImapError
from gateway.app import App
from gateway.config import ImapConfig
from gateway.intake.imap_connection import close, connect, describe_error
from gateway.spool import accept

log = logging.getLogger(__name__)

FLAGGED, SEEN = b"\\Flagged", b"\\Seen"

Filed = Literal["moved", "flagged", "gone"]  # "gone": another poller moved it first

# A header field: RFC 5322 field-name (printable US-ASCII but ":") then ":", allowing the
# obsolete white space before the colon (RFC 5322 4.5.3).
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


@dataclass
class PollResult:
    """What one pass over the folder did, message by message."""

    fetched: int = 0  # messages read from the server
    stored: int = 0  # newly committed to the spool
    known: int = 0  # already in the spool (a crash before the move, or another poller)
    moved: int = 0  # filed to processed_folder
    flagged: int = 0  # stored, but could not be moved: left in place, \Flagged \Seen
    failed: int = 0  # not a message at all: filed to failed_folder, not stored
    oversize: int = 0  # over [smtp] max_message_bytes: filed to failed_folder unread
    vanished: int = 0  # another session took it before we could fetch or move it
    # Not a count: the folder's UIDNEXT when this pass looked (None if the server did
    # not say), for telling whether mail came in since. Left out of comparisons.
    uidnext: int | None = field(default=None, compare=False)

    def summary(self) -> str:
        return (
            f"fetched {self.fetched}: {self.stored} stored, {self.known} already spooled, "
            f"{self.failed} unparseable, {self.oversize} oversize; "
            f"{self.moved} moved, {self.flagged} flagged; "
            f"{self.vanished} taken by another poller"
        )


def looks_like_message(raw: bytes) -> bool:
    """True unless `raw` fails to be an RFC 5322 message at all.

    The rule: everything up to the first empty line (all of it, if there is none) is the
    header, and it must be one or more fields, each a line `NAME:` with NAME in printable
    US-ASCII without ":", optionally followed by continuation lines starting with a space
    or tab. An mbox `From ` line before the header is tolerated. Nothing else is judged
    here (missing Date, broken MIME, 8-bit bytes): the pipeline quarantines those, and
    an admin can look at them there.
    """
    lines = raw.splitlines()
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    fields = 0
    for line in lines:
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return False
        elif _FIELD.match(line):
            fields += 1
        else:
            return False
    return fields > 0


def intake_key(cfg: ImapConfig, raw: bytes) -> str:
    """The spool's idempotency key for a message fetched from this mailbox."""
    header = BytesHeaderParser().parsebytes(raw)
    value = str(header.get("Message-ID", "") or "")
    message_id = re.sub(r"[^\x21-\x7e]", "", value)[:255]
    digest = hashlib.sha256(raw).hexdigest()
    return f"imap:{cfg.username}@{cfg.host}/{cfg.folder}:{message_id}:{digest}"


# --- one pass over the folder -------------------------------------------------------------


def poll_once(app: App) -> PollResult:
    """Connect, store and file every message in the folder, log out."""
    cfg = app.config.imap
    if not cfg.enabled:
        raise ConfigError("[imap] host is not set: the IMAP door is off")
    client = connect(cfg)
    try:
        ensure_folders(client, cfg)
        return drain(app, client)
    except (OSError, IMAPClientError) as exc:
        raise ImapError(
            f"IMAP session with {cfg.host}:{cfg.port} failed: {describe_error(exc)}"
        ) from exc
    finally:
        close(client)


def ensure_folders(client: IMAPClient, cfg: ImapConfig) -> None:
    """Create the processed and failed folders if missing (another poller may race us)."""
    for folder in (cfg.processed_folder, cfg.failed_folder):
        if client.folder_exists(folder):
            continue
        try:
            client.create_folder(folder)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            if not client.folder_exists(folder):
                log.warning("IMAP: cannot create folder %r (%s)", folder, describe_error(exc))


def drain(app: App, client: IMAPClient, wake: Callable[[], None] | None = None) -> PollResult:
    """Store and file every undeleted message in the folder, oldest first."""
    cfg = app.config.imap
    result = PollResult(uidnext=folder_uidnext(client, cfg.folder))
    uids = sorted(client.search(["UNDELETED"]))
    sizes = (
        {
            uid: item.get(b"RFC822.SIZE", 0)
            for uid, item in client.fetch(uids, [b"RFC822.SIZE"]).items()
        }
        if uids
        else {}
    )
    limit = app.config.smtp.max_message_bytes
    for uid in uids:
        if sizes.get(uid, 0) > limit:
            # The same limit as SMTP's 552; kept in the mailbox, never read into memory.
            log.warning(
                "IMAP: UID %s in %r has %s bytes, over the %s-byte limit; filing it in %r unread",
                uid,
                cfg.folder,
                sizes[uid],
                limit,
                cfg.failed_folder,
            )
            result.oversize += 1
            _file(client, uid, cfg.failed_folder)
            continue
        _take(app, client, uid, result, wake)
    return result


def _take(
    app: App, client: IMAPClient, uid: int, result: PollResult, wake: Callable[[], None] | None
) -> None:
    """Fetch one message, store it (or reject it as unparseable), then file it away."""
    cfg = app.config.imap
    raw = _fetch(client, uid)
    if raw is None:
        result.vanished += 1
        return
    result.fetched += 1
    if not looks_like_message(raw):
        log.warning(
            "IMAP: UID %s in %r is not an RFC 5322 message (%d bytes); filing it in %r, not stored",
            uid,
            cfg.folder,
            len(raw),
            cfg.failed_folder,
        )
        result.failed += 1
        _file(client, uid, cfg.failed_folder)
        return
    _store(app, uid, raw, result, wake)
    match _file(client, uid, cfg.processed_folder):
        case "moved":
            result.moved += 1
        case "flagged":
            result.flagged += 1
        case "gone":
            result.vanished += 1


def _store(
    app: App, uid: int, raw: bytes, result: PollResult, wake: Callable[[], None] | None
) -> None:
    """Commit the message to the spool; a message seen before is recognised, not stored."""
    cfg = app.config.imap
    key = intake_key(cfg, raw)
    message_id, created = accept(app.engine, raw, "imap", intake_key=key, headers=app.header_limits)
    if not created:
        result.known += 1
        log.info("IMAP: UID %s in %r is message %s, stored before", uid, cfg.folder, message_id)
        return
    result.stored += 1
    log.info("IMAP: UID %s in %r stored as message %s", uid, cfg.folder, message_id)
    if wake is not None:
        wake()


def _fetch(client: IMAPClient, uid: int) -> bytes | None:
    """The message's bytes (without setting \\Seen), or None if it is gone."""
    try:
        data = client.fetch([uid], [b"BODY.PEEK[]"])
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:  # e.g. Dovecot's NO [EXPUNGEISSUED]
        log.info("IMAP: UID %s could not be fetched (%s); skipped", uid, describe_error(exc))
        return None
    # A message expunged by another session comes back as no entry, or as BODY[] NIL.
    body = data.get(uid, {}).get(b"BODY[]")
    return body if isinstance(body, bytes) else None


def _file(client: IMAPClient, uid: int, folder: str) -> Filed:
    """Move the message to `folder`, or flag it where moving fails."""
    try:
        _move(client, uid, folder)
        return "moved"
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if "EXPUNGEISSUED" in str(exc).upper():  # RFC 5530: another session expunged it
            return "gone"
        log.warning(
            "IMAP: cannot move UID %s to %r (%s); flagging it", uid, folder, describe_error(exc)
        )
    try:
        client.add_flags([uid], [FLAGGED, SEEN])
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        log.warning("IMAP: cannot flag UID %s either (%s)", uid, describe_error(exc))
    return "flagged"


def _move(client: IMAPClient, uid: int, folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move([uid], folder)
        return
    client.copy([uid], folder)
    client.delete_messages([uid])
    if client.has_capability("UIDPLUS"):
        client.uid_expunge([uid])
    else:
        client.expunge()  # also removes what others marked \Deleted: that was their aim


# --- the long-running poller --------------------------------------------------------------


def folder_uidnext(client: IMAPClient, folder: str) -> int | None:
    """Select `folder` (again): its UIDNEXT, the UID the next message delivered will get."""
    uidnext = client.select_folder(folder).get(b"UIDNEXT")
    return uidnext if isinstance(uidnext, int) else None
