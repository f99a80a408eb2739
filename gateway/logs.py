"""Structured logging: one event per line, as `key=value` pairs or as JSON.

In: the format (`text`, the default, or `json`: `--log-format` or `[logging] format`) and a
level. Out: one handler on the root logger that writes every record as exactly one line
on stderr (journald keeps one line per event): a newline inside a message or a traceback
is escaped, never written. Fields given with `event()` (message id, team, state, reason,
...) become keys of their own, so `journalctl -u clearinghouse | grep state=quarantined`
or a JSON log shipper can select on them.

What may be logged: ids, team handles, states, reason codes, fingerprints, addresses
from the registry. Never decrypted content: the pipeline logs its outcome through
`message_event`, whose fields carry nothing of the message itself.

Identical events beyond a burst are counted, not written (gateway/log_repeats.py): one
line then says how often an event repeated. Every line is escaped as the CLI escapes
stored text (gateway/printable.py): log lines quote what senders chose.

Like `logging.basicConfig`, `setup_logging` leaves a root logger alone that someone else
(pytest, an embedding program) has already given handlers; it only replaces its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from contract.codes import Reason, State
from gateway.log_repeats import RepeatLimit
from gateway.printable import printable

LogFormat = Literal["text", "json"]
FIELDS = "clearinghouse_fields"  # the LogRecord attribute `event` stores its fields in
_RESERVED = ("time", "level", "logger", "msg")


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log `msg` with `fields` as keys of their own (none may be named like the base keys)."""
    _log(logger, level, msg, fields)


def message_event(
    logger: logging.Logger,
    message_id: int | None,
    *,
    team: str | None,
    state: State,
    reason: Reason | None,
    **more: Any,
) -> None:
    """The one line every pipeline outcome gets: message id, team, state, reason."""
    level = logging.WARNING if state == State.QUARANTINED else logging.INFO
    fields = {"message_id": message_id, "team": team, "state": state, "reason": reason}
    _log(logger, level, "message processed", fields | more)


def _log(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    clash = set(fields) & set(_RESERVED)
    if clash:
        raise ValueError(f"field names reserved by the log format: {sorted(clash)}")
    # stacklevel 3: the record names whoever called `event` or `message_event`.
    logger.log(level, msg, extra={FIELDS: fields}, stacklevel=3)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The base keys of a record, then its event fields, then its exception."""
    moment = datetime.fromtimestamp(record.created, UTC)
    fields: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields |= getattr(record, FIELDS, {})
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(json.dumps(record_fields(record), ensure_ascii=False, default=str))


class KeyValueFormatter(logging.Formatter):
    """`time=... level=info logger=gateway.pipeline msg="message processed" message_id=7 ...`"""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv_value(v)}" for k, v in record_fields(record).items())


def _kv_value(value: Any) -> str:
    """A value that needs no quoting stays bare; anything else is a JSON string."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    if text and text.isprintable() and not any(c in text for c in ' "=\\'):
        return text
    return printable(json.dumps(text, ensure_ascii=False))


class _StderrHandler(logging.Handler):
    """Writes each record as one line to whatever `sys.stderr` is at that moment, but an
    identical event repeated beyond `repeats`' burst (counted instead)."""

    def __init__(self, repeats: RepeatLimit) -> None:
        super().__init__()
        self.repeats = repeats

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = [self.format(_repeated(*due)) for due in self.repeats.due()]
            if self.repeats.admit(record, getattr(record, FIELDS, None)):
                lines.append(self.format(record))
            if lines:
                stream: TextIO = sys.stderr
                stream.write("\n".join(lines) + "\n")
                stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Say what was held back, before the handler goes."""
        with contextlib.suppress(Exception):
            for due in self.repeats.due(everything=True):
                sys.stderr.write(self.format(_repeated(*due)) + "\n")
        super().close()


def _repeated(first: logging.LogRecord, held: int) -> logging.LogRecord:
    """The line that says an event was held back `held` times; its fields are the
    event's, and `repeated`."""
    line = logging.makeLogRecord(
        {
            "name": first.name,
            "levelno": first.levelno,
            "levelname": first.levelname,
            "msg": f"repeated {held} more times (not written): {first.getMessage()}",
        }
    )
    setattr(line, FIELDS, {**getattr(first, FIELDS, {}), "repeated": held})
    return line


def current_format() -> LogFormat:
    """The format our handler writes in ("text" if none is installed): for child processes."""
    ours = [h for h in logging.getLogger().handlers if isinstance(h, _StderrHandler)]
    return "json" if ours and isinstance(ours[0].formatter, JsonFormatter) else "text"


def setup_logging(
    fmt: LogFormat = "text",
    *,
    level: int = logging.INFO,
    max_repeats: int = 10,
    repeat_window_seconds: float = 60,
) -> bool:
    """Install (or replace) our handler on the root logger; False if left to another.

    Also quietens libraries whose own lines say nothing an operator needs: python-gnupg
    warns on every non-zero gpg exit, which refused messages cause by design, aiosmtpd
    logs each connection, Alembic each plugin it loads.
    """
    logging.getLogger("gnupg").setLevel(logging.ERROR)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin it loads
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _StderrHandler)]
    if len(ours) != len(root.handlers):
        return False
    for handler in ours:
        root.removeHandler(handler)
    handler = _StderrHandler(RepeatLimit(max_repeats, repeat_window_seconds))
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    return True
