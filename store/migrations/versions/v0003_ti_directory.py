"""The Trusted Introducer link of a team (`team.ti_name`) and what the directory said of
it at the last sync (`tientry`, `tikey`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("team", sa.Column("ti_name", sa.String(), nullable=True))
    op.create_index("ix_team_ti_name", "team", ["ti_name"], unique=True)
    op.create_table(
        "tientry",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("short_name", sa.String(), nullable=False),
        sa.Column("classification", sa.String(), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "tikey",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("expires", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["team_id"], ["tientry.team_id"]),
        sa.PrimaryKeyConstraint("team_id", "fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("tikey")
    op.drop_table("tientry")
    op.drop_index("ix_team_ti_name", table_name="team")
    with op.batch_alter_table("team") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("ti_name")
