"""Fixtures for the statistics tests: a fresh store per test, on the pass's database (the
helpers that fill it are in tests/statistics_data.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from store.db import make_engine
from store.migrate import upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
