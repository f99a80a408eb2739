"""store/models.py: rows written without building the model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from store.models import OutboxEntry, Submission, new_row


def test_new_row_is_what_the_model_would_insert() -> None:
    values: dict[str, Any] = {
        "kind": "receipt",
        "recipient": "stats@cert-a.example",
        "raw": b"x",
        "dedupe_key": "receipt:1",
        "message_id": 1,
        "lease_owner": "w1",
    }
    row = new_row(OutboxEntry, **values)
    built = OutboxEntry(**values).model_dump(exclude={"id"})
    assert row.keys() == built.keys()
    timed = {"next_attempt_at", "created_at"}  # default factories: now, a moment apart
    assert {k: v for k, v in row.items() if k not in timed} == {
        k: v for k, v in built.items() if k not in timed
    }
    assert all(isinstance(row[k], datetime) and row[k].tzinfo is not None for k in timed)
    assert (row["state"], row["attempts"], row["sent_at"]) == ("pending", 0, None)


def test_new_row_refuses_a_missing_required_column() -> None:
    with pytest.raises(TypeError, match="Submission: team_id is required"):
        new_row(Submission, type="type1", period="2026-10", revision=1, message_id=1)
