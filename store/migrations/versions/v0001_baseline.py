"""Baseline: the schema as `create_all` made it before migrations existed.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Adopts such a database as it is: each table is created only where it is missing (a
gateway from before `monthlyrun` lacks that one), so an existing store keeps its data
and continues from here like any other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Index = tuple[str, bool]  # (column, unique): every index is on one column


def _tables() -> list[tuple[str, list[SchemaItem], list[_Index]]]:
    """(name, columns and constraints, indexes) of every table, parents first."""
    return [
        ("coordinator", _coordinator(), [("email", True)]),
        ("monthlyrun", _monthlyrun(), [("period", False)]),
        ("team", _team(), [("handle", True)]),
        (
            "message",
            _message(),
            [
                ("content_sha256", False),
                ("raw_sha256", False),
                ("received_at", False),
                ("state", False),
            ],
        ),
        ("teamkey", _teamkey(), [("team_id", False)]),
        (
            "outboxentry",
            _outboxentry(),
            [("message_id", False), ("next_attempt_at", False), ("state", False)],
        ),
        (
            "submission",
            _submission(),
            [("message_id", False), ("period", False), ("team_id", False)],
        ),
        ("type1value", _type1value(), []),
        ("type2count", _type2count(), [("submission_id", False)]),
    ]


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _coordinator() -> list[SchemaItem]:
    return [
        _int("id"),
        _text("email"),
        _text("name", True),
        _text("fingerprint"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id"),
    ]


def _monthlyrun() -> list[SchemaItem]:
    return [
        _int("id"),
        _text("period"),
        _int("generation"),
        sa.Column("sent", sa.Boolean(), nullable=False),
        _int("queued"),
        _text("digest"),
        _time("ran_at"),
        sa.PrimaryKeyConstraint("id"),
    ]


def _team() -> list[SchemaItem]:
    return [
        _int("id"),
        _text("handle"),
        _text("name"),
        _text("email"),
        _text("status"),
        _text("country", True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id"),
    ]


def _message() -> list[SchemaItem]:
    return [
        _int("id"),
        _text("channel"),
        _time("received_at"),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        _text("raw_sha256"),
        _int("size"),
        _text("envelope_from", True),
        _text("envelope_to", True),
        _text("intake_key", True),
        _text("state"),
        _text("reason", True),
        _text("detail", True),
        _int("team_id", True),
        _text("signer_fingerprint", True),
        _text("content_sha256", True),
        _time("processed_at", True),
        _int("attempts"),
        _text("lease_owner", True),
        _time("lease_until", True),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intake_key"),
    ]


def _teamkey() -> list[SchemaItem]:
    return [
        _text("fingerprint"),
        _int("team_id"),
        _text("user_ids"),
        _time("created_at", True),
        _time("expires_at", True),
        _time("revoked_at", True),
        _text("revoke_reason", True),
        _time("bound_at"),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("fingerprint"),
    ]


def _outboxentry() -> list[SchemaItem]:
    return [
        _int("id"),
        _text("kind"),
        _int("message_id", True),
        _text("recipient"),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        _text("dedupe_key"),
        _text("state"),
        _int("attempts"),
        _time("next_attempt_at"),
        _text("last_error", True),
        _time("created_at"),
        _time("sent_at", True),
        _text("lease_owner", True),
        _time("lease_until", True),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    ]


def _submission() -> list[SchemaItem]:
    return [
        _int("id"),
        _int("team_id"),
        _text("type"),
        _text("period"),
        _int("revision"),
        _int("message_id"),
        _int("supersedes_id", True),
        _text("source"),
        _time("created_at"),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["supersedes_id"], ["submission.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "type", "period", "revision"),
    ]


def _type1value() -> list[SchemaItem]:
    return [
        _int("submission_id"),
        _text("field"),
        sa.Column("value", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("submission_id", "field"),
    ]


def _type2count() -> list[SchemaItem]:
    return [
        _int("id"),
        _int("submission_id"),
        _text("class_slug"),
        _text("type_slug", True),
        _int("count"),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("id"),
    ]


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for table, items, indexes in _tables():
        if table in present:
            continue
        op.create_table(table, *items)
        for column, unique in indexes:
            op.create_index(f"ix_{table}_{column}", table, [column], unique=unique)


def downgrade() -> None:
    for table, _, _ in reversed(_tables()):
        op.drop_table(table)
