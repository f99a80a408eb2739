"""Fixtures for the statistics tests: a fresh SQLite store per test (the helpers that
fill it are in tests/statistics_data.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store.db import create_schema, make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'clearinghouse.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()
