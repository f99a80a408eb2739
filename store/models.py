"""The database schema: registry, messages (the spool), submissions, outbox.

Every table the gateway writes is here, as sqlmodel classes. The raw message is kept
in the database, not on local disk, so that several gateway instances sharing one
PostgreSQL see the same spool, and so that "stored" means one committed transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Insert,
    LargeBinary,
    Numeric,
    Table,
    UniqueConstraint,
    insert,
)
from sqlmodel import Field, Session, SQLModel


def utcnow() -> datetime:
    # Aware: sqlmodel maps `datetime` fields to its UTCDateTime type, which refuses
    # naive values on write and returns aware UTC on read (TIMESTAMPTZ on PostgreSQL).
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of `model`, for statements built once and run many times.

    A statement built per call, and an ORM-enabled UPDATE most of all, costs more
    Python than the database takes to run it: the hot path of processing a message
    runs prebuilt Core statements with bound parameters instead.
    """
    table = model.__table__  # type: ignore[attr-defined]  # set by table=True
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


@cache
def _insert_returning_id(table: Table) -> Insert:
    return insert(table).returning(table.c.id)


def new_row(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A new row of `model` as an INSERT takes it: `values`, and every other column's
    default (factories called), but the database's own `id`.

    What building the model and dumping it gives, without building it: a table model's
    constructor costs more Python than its INSERT (0.15 ms each, twice per message).
    """
    row = dict(values)
    for name, required, default, factory in _defaults(model):
        if name not in row:
            if required:
                raise TypeError(f"{model.__name__}: {name} is required")
            row[name] = factory() if factory is not None else default
    return row


@cache
def _defaults(model: type[SQLModel]) -> tuple[tuple[str, bool, Any, Any], ...]:
    return tuple(
        (name, info.is_required(), info.default, info.default_factory)
        for name, info in model.model_fields.items()
        if name != "id"
    )


def insert_values(session: Session, model: type[SQLModel], row: dict[str, Any]) -> int:
    """INSERT one `new_row` of `model` in the caller's transaction; its new id.

    One prebuilt Core statement instead of the session's unit of work, which costs
    several times more.
    """
    new_id = session.execute(_insert_returning_id(table_of(model)), row)
    return int(new_id.scalar_one())


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    handle: str = Field(unique=True, index=True)
    name: str
    email: str  # the registered contact address: the only place replies go
    status: str = "accredited"  # listed | accredited | certified | suspended
    country: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # The team's Trusted Introducer short name (`teams sync`), as the admin linked it.
    ti_name: str | None = Field(default=None, unique=True, index=True)


class TiEntry(SQLModel, table=True):
    """What the TI directory said of a linked team when a `teams sync --apply` last saw it."""

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    short_name: str  # as the directory spells it
    classification: str  # l | a | c
    since: date | None = None
    seen_at: datetime  # the last applied sync whose file listed the team


class TiKey(SQLModel, table=True):
    """A fingerprint the TI directory lists for a linked team, with its expiry there."""

    team_id: int = Field(foreign_key="tientry.team_id", primary_key=True)
    fingerprint: str = Field(primary_key=True)  # upper hex, no spaces
    expires: date | None = None


class TeamKey(SQLModel, table=True):
    """A public key bound to one team, pinned by its primary fingerprint."""

    fingerprint: str = Field(primary_key=True)  # primary key fingerprint, upper hex
    team_id: int = Field(foreign_key="team.id", index=True)
    user_ids: str = ""  # newline-separated, for display only
    created_at: datetime | None = None  # key creation time
    expires_at: datetime | None = None  # primary key expiry, None = never
    revoked_at: datetime | None = None  # set by `keys revoke` (or a revocation cert)
    revoke_reason: str | None = None
    bound_at: datetime = Field(default_factory=utcnow)


class Coordinator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    name: str | None = None
    fingerprint: str
    created_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """One incoming email: the spool entry and its processing outcome."""

    # The duplicate check (an accepted message of the team with this content): on the
    # hash alone, SQLite took the state index instead on a store still small, reading
    # every accepted message in id order; two equal columns outweigh that at any size.
    __table_args__ = (Index("ix_message_content_sha256_team_id", "content_sha256", "team_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str  # smtp | imap | ingest
    received_at: datetime = Field(default_factory=utcnow, index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    raw_sha256: str = Field(index=True)
    size: int
    envelope_from: str | None = None
    envelope_to: str | None = None  # comma-separated
    # Channel-specific idempotency key (IMAP: mailbox + Message-ID + hash), unique so a
    # re-fetched message is recognised instead of stored twice.
    intake_key: str | None = Field(default=None, unique=True)
    state: str = Field(default="received", index=True)
    reason: str | None = None
    detail: str | None = None  # for admins only: never mailed to the sender
    team_id: int | None = Field(default=None, foreign_key="team.id")
    signer_fingerprint: str | None = None
    # Hash of the signed content; an authenticated message whose signed content equals
    # an accepted one is a duplicate (replay or resend).
    content_sha256: str | None = None  # indexed with team_id, above
    processed_at: datetime | None = None
    attempts: int = 0
    # Claim/lease so that several workers never process one message at once.
    lease_owner: str | None = None
    lease_until: datetime | None = None
    # The domain of the outer From, when there is exactly one (else ""; None: stored
    # before it was recorded). Arrival order is kept among messages of one domain only.
    sender_domain: str | None = None
    # The SMTP client's address (an IPv6 client's /64), for per-client quotas.
    client_address: str | None = Field(default=None, index=True)
    # When [retention] removed the raw bytes (`raw` is then empty); the record stays.
    purged_at: datetime | None = None
    # When the accepted signature was made (authenticated messages only).
    signed_at: datetime | None = None


class Submission(SQLModel, table=True):
    """One stored report: revision N of (team, type, period). The newest counts."""

    __table_args__ = (
        UniqueConstraint("team_id", "type", "period", "revision"),
        # `submissions list --team H --period P` and a team's status command: with
        # (team_id) alone every report the team ever sent was read for one period.
        Index("ix_submission_team_id_period", "team_id", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")  # indexed with period, above
    type: str  # type1 | type2
    period: str = Field(index=True)  # YYYY-MM
    revision: int
    message_id: int = Field(foreign_key="message.id", index=True)
    supersedes_id: int | None = Field(default=None, foreign_key="submission.id")
    source: str = "body"
    created_at: datetime = Field(default_factory=utcnow)


class Type1Value(SQLModel, table=True):
    submission_id: int = Field(foreign_key="submission.id", primary_key=True)
    field: str = Field(primary_key=True)  # one of parsers.model.TYPE1_FIELDS
    value: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class Type2Count(SQLModel, table=True):
    """One type 2 count: as the team sent it, and what it counted as when stored."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    class_slug: str
    type_slug: str | None = None  # None: the class-only line
    count: int
    # The vocabulary class_slug/type_slug are in: the canonical one when it was stored.
    taxonomy: str = "ecsirt-v2"
    # As sent: vocabulary ("ecsirt-v2" | "rsit-1.3"), class, type (None: class-only).
    # Statistics recount from these when the canonical vocabulary changes.
    sent_taxonomy: str = "ecsirt-v2"
    sent_class: str
    sent_type: str | None = None


class OutboxEntry(SQLModel, table=True):
    """A sealed (signed+encrypted) mail waiting for delivery, retried with backoff."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # receipt | rejection | duplicate | monthly | reminder | ...
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    recipient: str  # always an address from the registry
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Unique per logical mail ("receipt:42"), so reprocessing never sends twice.
    dedupe_key: str = Field(unique=True)
    state: str = Field(default="pending", index=True)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


class MonthlyRun(SQLModel, table=True):
    """One `report monthly` run: the period, the mailing it belongs to, what it did."""

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(index=True)  # YYYY-MM
    # The mailing: 0 for the first; each `--resend` starts the next one, whose outbox
    # dedupe keys differ from every earlier mailing's. Plain reruns reuse the newest.
    generation: int = 0
    sent: bool = False  # False: `--no-send`, files only
    queued: int = 0  # mails this run added to the outbox
    digest: str = ""  # sha256 over the files written: same inputs, same digest
    ran_at: datetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """One change to the trust registry or the gateway keyring: who, when, what.

    Written in the same transaction as the change itself, so the log never claims a
    change that was rolled back, nor misses one that was committed.
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str  # the OS user, with the sudo user behind it: "root (sudo: alice)"
    action: str  # e.g. "teams add", "keys revoke", "gateway-key import"
    subject: str  # the handle, fingerprint or address changed
    details: str = ""
