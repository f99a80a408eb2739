"""Years of a clearinghouse's history, written straight into a fresh store.

In: an engine on an empty, migrated store (SQLite or PostgreSQL), a number of teams and
of months, and the instant the history ends at ("now"). Out: the rows the gateway itself
would have left after those months, in the shapes store/models.py gives them: teams and
their keys; each month, two reports a team (type 1 and type 2), a few revisions, a few
refused messages (quarantined, rejected, duplicate), every incoming message with its
raw bytes, every reply in the outbox (sent), the monthly run with its mailing.

The raw bytes are left as `[retention]` leaves them at its defaults:
`accepted_raw_days = 0` keeps every accepted message's bytes; `refused_raw_days = 90`
drops the bytes of quarantined, rejected and duplicate messages older than that. The
column is NOT NULL, so a dropped message's bytes are the empty string.

Rows go in as bulk inserts, one transaction a month (COPY on PostgreSQL), with ids
chosen here so that no row needs reading back. Not the gateway's code path: only what
it stores. Deterministic: the same arguments give the same rows.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from bench.bulk import after_bulk_load, insert_rows
from parsers.model import TYPE1_FIELDS

REFUSED_RAW_DAYS = 90  # [retention] refused_raw_days, its default
TYPE2 = [
    ("abusive-content", "spam"),
    ("intrusion-attempts", "login-attempts"),
    ("intrusions", None),
    ("malicious-code", "virus"),
    ("other", None),
]
INTAKE = "stats@clearinghouse.example"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Shape:
    """How large and how varied the history is."""

    teams: int = 1000
    months: int = 120
    raw_bytes: int = 3500  # an incoming PGP/MIME report
    reply_bytes: int = 3000  # a sealed receipt or error reply
    mail_bytes: int = 2000  # a sealed monthly mail (real ones carry PDFs: larger)
    revision_every: int = 20  # one report in 20 gets a second revision
    quarantined_every: int = 33  # one team-month in 33 has a quarantined message
    rejected_every: int = 97
    duplicate_every: int = 101


def periods_ending(last: str, count: int) -> list[str]:
    """`count` periods "YYYY-MM" ending with `last`, oldest first."""
    year, month = map(int, last.split("-"))
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def month_after(period: str) -> datetime:
    year, month = map(int, period.split("-"))
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


@dataclass
class _Ids:
    """The next id of each table: rows are numbered here, not by the database."""

    next: dict[str, int] = field(default_factory=dict)

    def take(self, table: str) -> int:
        value = self.next.get(table, 1)
        self.next[table] = value + 1
        return value


@dataclass
class _Month:
    """The rows of one month, by table, in the order they are inserted."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)


class History:
    """Writes the history of `shape` into the store of `engine`, ending at `now`."""

    def __init__(self, engine: Engine, shape: Shape, now: datetime) -> None:
        self.engine, self.shape, self.now = engine, shape, now
        self.ids = _Ids()
        self.random = random.Random(20261206)  # noqa: S311 - test data, not secrets
        self.blobs = {
            size: _blobs(size) for size in {shape.raw_bytes, shape.reply_bytes, shape.mail_bytes}
        }
        self.cutoff = now - timedelta(days=REFUSED_RAW_DAYS)

    def write(self, last_period: str, progress: Progress) -> None:
        """Teams and keys, then every month up to `last_period`, oldest first."""
        months = periods_ending(last_period, self.shape.months)
        with self.engine.begin() as connection:
            insert_rows(connection, "team", [self._team(i) for i in range(self.shape.teams)])
            insert_rows(connection, "teamkey", [self._key(i) for i in range(self.shape.teams)])
        for done, period in enumerate(months, 1):
            month = self._month(period)
            with self.engine.begin() as connection:
                for table, rows in month.rows.items():
                    insert_rows(connection, table, rows)
            if done % 12 == 0 or done == len(months):
                progress(f"seeded {done} of {len(months)} months ({period})")
        after_bulk_load(self.engine, self.ids.next)

    def _team(self, index: int) -> dict[str, Any]:
        handle = handle_of(index)
        return {
            "id": index + 1,
            "handle": handle,
            "name": handle.upper(),
            "email": f"cert@{handle}.example",
            "status": "accredited",
            "country": "EU",
            "created_at": self.now - timedelta(days=3700),
        }

    def _key(self, index: int) -> dict[str, Any]:
        fingerprint = hashlib.sha1(f"key {index}".encode()).hexdigest().upper()  # noqa: S324
        return {
            "fingerprint": fingerprint,
            "team_id": index + 1,
            "user_ids": handle_of(index),
            "created_at": None,
            "expires_at": None,
            "revoked_at": None,
            "revoke_reason": None,
            "bound_at": self.now - timedelta(days=3700),
        }

    def _month(self, period: str) -> _Month:
        month, arrives = _Month(), month_after(period)
        for index in range(self.shape.teams):
            team_id = index + 1
            at = arrives + timedelta(hours=self.random.randrange(24 * 4), seconds=index)
            for report_type in ("type1", "type2"):
                revisions = 1 + (self.random.randrange(self.shape.revision_every) == 0)
                supersedes = None
                for revision in range(1, revisions + 1):
                    when = at + timedelta(days=revision - 1)
                    message = self._message(month, when, "accepted", team_id, None)
                    supersedes = self._submission(
                        month, team_id, report_type, period, revision, message, supersedes, when
                    )
                    self._reply(month, "receipt", message, team_id, when)
            self._refused(month, team_id, at)
        self._monthly_run(month, period, arrives + timedelta(days=4))
        return month

    def _refused(self, month: _Month, team_id: int, at: datetime) -> None:
        shape, pick = self.shape, self.random.randrange
        if pick(shape.quarantined_every) == 0:
            known = pick(2) == 0  # signed by a registered key, or by nobody we know
            reason = "stale-signature" if known else "unknown-key"
            self._message(month, at, "quarantined", team_id if known else None, reason)
        if pick(shape.rejected_every) == 0:
            message = self._message(month, at, "rejected", team_id, "invalid-report")
            self._reply(month, "rejection", message, team_id, at)
        if pick(shape.duplicate_every) == 0:
            message = self._message(month, at, "duplicate", team_id, None)
            self._reply(month, "duplicate", message, team_id, at)

    def _message(
        self, month: _Month, at: datetime, state: str, team_id: int | None, reason: str | None
    ) -> int:
        message_id = self.ids.take("message")
        refused = state != "accepted"
        raw = b"" if refused and at < self.cutoff else self._blob(self.shape.raw_bytes)
        digest = hashlib.sha256(b"m%d" % message_id).hexdigest()
        month.add(
            "message",
            {
                "id": message_id,
                "channel": "smtp",
                "received_at": at,
                "raw": raw,
                "raw_sha256": digest,
                "size": self.shape.raw_bytes,
                "envelope_from": f"cert@{handle_of((team_id or 1) - 1)}.example",
                "envelope_to": INTAKE,
                "intake_key": None,
                "state": state,
                "reason": reason,
                "detail": None,
                "team_id": team_id,
                "signer_fingerprint": None if team_id is None else digest[:40].upper(),
                "content_sha256": None if state == "quarantined" else digest[::-1],
                "processed_at": at + timedelta(seconds=2),
                "attempts": 1,
                "lease_owner": None,
                "lease_until": None,
            },
        )
        return message_id

    def _submission(
        self,
        month: _Month,
        team_id: int,
        report_type: str,
        period: str,
        revision: int,
        message_id: int,
        supersedes: int | None,
        at: datetime,
    ) -> int:
        submission_id = self.ids.take("submission")
        month.add(
            "submission",
            {
                "id": submission_id,
                "team_id": team_id,
                "type": report_type,
                "period": period,
                "revision": revision,
                "message_id": message_id,
                "supersedes_id": supersedes,
                "source": "body",
                "created_at": at + timedelta(seconds=2),
            },
        )
        seed = submission_id * 7
        if report_type == "type1":
            for i, name in enumerate(TYPE1_FIELDS):
                value = Decimal(seed % 1000 + i)
                month.add(
                    "type1value", {"submission_id": submission_id, "field": name, "value": value}
                )
        else:
            for i, (class_slug, type_slug) in enumerate(TYPE2):
                month.add(
                    "type2count",
                    {
                        "id": self.ids.take("type2count"),
                        "submission_id": submission_id,
                        "class_slug": class_slug,
                        "type_slug": type_slug,
                        "count": (seed + i) % 50,
                        "taxonomy": "ecsirt-v2",  # as sent, and as it counts
                        "sent_taxonomy": "ecsirt-v2",
                        "sent_class": class_slug,
                        "sent_type": type_slug,
                    },
                )
        return submission_id

    def _reply(self, month: _Month, kind: str, message_id: int, team_id: int, at: datetime) -> None:
        self._outbox(
            month, kind, message_id, team_id, f"{kind}:{message_id}", self.shape.reply_bytes, at
        )

    def _outbox(
        self,
        month: _Month,
        kind: str,
        message_id: int | None,
        team_id: int,
        key: str,
        size: int,
        at: datetime,
    ) -> None:
        sent = at + timedelta(seconds=5)
        month.add(
            "outboxentry",
            {
                "id": self.ids.take("outboxentry"),
                "kind": kind,
                "message_id": message_id,
                "recipient": f"cert@{handle_of(team_id - 1)}.example",
                "raw": self._blob(size),
                "dedupe_key": key,
                "state": "sent",
                "attempts": 1,
                "next_attempt_at": at,
                "last_error": None,
                "created_at": at,
                "sent_at": sent,
                "lease_owner": None,
                "lease_until": None,
            },
        )

    def _monthly_run(self, month: _Month, period: str, at: datetime) -> None:
        for index in range(self.shape.teams):
            key = f"monthly:{period}:0:team:{handle_of(index)}"
            self._outbox(month, "monthly", None, index + 1, key, self.shape.mail_bytes, at)
        month.add(
            "monthlyrun",
            {
                "id": self.ids.take("monthlyrun"),
                "period": period,
                "generation": 0,
                "sent": True,
                "queued": self.shape.teams,
                "digest": "0" * 64,
                "ran_at": at,
            },
        )

    def _blob(self, size: int) -> bytes:
        return self.random.choice(self.blobs[size])


def handle_of(index: int) -> str:
    return f"team{index:04d}"


def _blobs(size: int, count: int = 16) -> list[bytes]:
    """`count` distinct ASCII-armour-like blobs of `size` bytes: base64 of random bytes,
    as incompressible as a real PGP message (PostgreSQL compresses large values)."""
    source = random.Random(size)  # noqa: S311 - test data
    found = []
    for _ in range(count):
        encoded = base64.encodebytes(source.randbytes(size))
        found.append(encoded[:size])
    return found
