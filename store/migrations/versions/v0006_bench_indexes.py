"""Indexes that keep one team's month and the duplicate check a few reads after years.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

`submission (team_id, period)` replaces `submission (team_id)`: one team's reports of one
period, for `submissions list --team H --period P` and the team's status command, without
reading all its reports of all years (SQLite went by the team alone). It also serves every
query the one it replaces served (team_id is its first column).

`message (content_sha256, team_id)` replaces `message (content_sha256)`: the duplicate
check of every processed message asks for both. On the hash alone, SQLite chose the state
index instead while the store was small (an accepted message in id order: every one read)
and switched only as the table grew; two equal columns win at any size.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_content_sha256_team_id", "message", ["content_sha256", "team_id"])
    op.drop_index("ix_message_content_sha256", table_name="message")
    op.create_index("ix_submission_team_id_period", "submission", ["team_id", "period"])
    op.drop_index("ix_submission_team_id", table_name="submission")


def downgrade() -> None:
    op.create_index("ix_submission_team_id", "submission", ["team_id"])
    op.drop_index("ix_submission_team_id_period", table_name="submission")
    op.create_index("ix_message_content_sha256", "message", ["content_sha256"])
    op.drop_index("ix_message_content_sha256_team_id", table_name="message")
