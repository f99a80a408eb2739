"""Indexes that keep listings and the spool's claim flat over years of data.

Revision ID: 0003_bench
Revises: 0002
Create Date: 2026-12-06

`message (state, id)` replaces `message (state)`: a state's rows in id order, for
`messages list --state S --limit N` and the claim of the oldest received message, without
fetching and sorting every row of the state. `submission (team_id, period)` replaces
`submission (team_id)`: one team's reports of one period, for `submissions list --team H
--period P` and the team's status command, without reading all its reports of all years.
Each new index also serves every query the one it replaces served (a prefix of it).
"""

from __future__ import annotations

from alembic import op

revision = "0003_bench"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_state_id", "message", ["state", "id"])
    op.drop_index("ix_message_state", table_name="message")
    op.create_index("ix_submission_team_id_period", "submission", ["team_id", "period"])
    op.drop_index("ix_submission_team_id", table_name="submission")


def downgrade() -> None:
    op.create_index("ix_submission_team_id", "submission", ["team_id"])
    op.drop_index("ix_submission_team_id_period", table_name="submission")
    op.create_index("ix_message_state", "message", ["state"])
    op.drop_index("ix_message_state_id", table_name="message")
