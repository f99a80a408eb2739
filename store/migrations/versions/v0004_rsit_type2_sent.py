"""Type 2 counts keep what was sent (vocabulary, class, type) beside what they count as.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Until now a count was stored only as the eCSIRT.net v2 class/type it counted for; RSIT
names were folded into it. Existing rows are carried over as sent in eCSIRT.net v2,
exactly as stored (`sent_*` = the stored class/type, both taxonomies "ecsirt-v2"), so no
published figure changes. Downgrading drops what was sent and keeps what each count
counted as.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("type2count") as batch:
        for name in ("taxonomy", "sent_taxonomy"):
            batch.add_column(
                sa.Column(name, sa.String(), nullable=False, server_default="ecsirt-v2")
            )
        batch.add_column(sa.Column("sent_class", sa.String(), nullable=True))
        batch.add_column(sa.Column("sent_type", sa.String(), nullable=True))
    op.execute("UPDATE type2count SET sent_class = class_slug, sent_type = type_slug")
    # The defaults only filled the existing rows: new rows always say their taxonomies.
    with op.batch_alter_table("type2count") as batch:
        batch.alter_column("sent_class", existing_type=sa.String(), nullable=False)
        for name in ("taxonomy", "sent_taxonomy"):
            batch.alter_column(name, existing_type=sa.String(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("type2count") as batch:
        for name in ("sent_type", "sent_class", "sent_taxonomy", "taxonomy"):
            batch.drop_column(name)
