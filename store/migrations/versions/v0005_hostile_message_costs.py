"""What hostile-load defences need to know of each message: the outer From's domain
(arrival order is kept per sending domain), the client address (per-client quotas),
when its raw bytes were purged ([retention]) and when its signature was made (a refusal
of content signed long before it arrived is counted as a replay).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("sender_domain", sa.String(), nullable=True))
        batch.add_column(sa.Column("client_address", sa.String(), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_message_client_address", "message", ["client_address"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_client_address", table_name="message")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("signed_at")
        batch.drop_column("purged_at")
        batch.drop_column("client_address")
        batch.drop_column("sender_domain")
