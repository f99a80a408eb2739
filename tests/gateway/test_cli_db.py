"""The command line, the database schema: `db upgrade`, `db current`, and `init` on an
existing store (on the pass's database: SQLite, or a PostgreSQL schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from support import config_toml

from gateway.cli import cli
from gateway.config import Config
from store import migrate
from store.db import make_engine, open_session
from store.registry import list_teams


@pytest.fixture
def config_file(tmp_path: Path, config: Config) -> Path:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(config))
    return path


def run(config_file: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--config", str(config_file), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output
    return result


def test_db_upgrade_creates_no_data_directory(tmp_path: Path) -> None:
    # Only `init` makes a data directory; an SQLite file cannot be opened in a missing one.
    home = tmp_path / "new-home"
    config = tmp_path / "new.toml"
    config.write_text(f'[clearinghouse]\nhome = "{home}"\n')
    for args in (["db", "upgrade"], ["db", "current"]):
        assert "init" in run(config, *args, code=1).stderr
    assert not home.exists()


def test_db_upgrade_brings_a_new_database_to_the_newest_revision(config_file: Path) -> None:
    newest = migrate.head()
    assert "run `clearinghouse db upgrade`" in run(config_file, "db", "current", code=1).stderr

    done = run(config_file, "db", "upgrade").stdout
    assert done == f"the database was upgraded from no revision to {newest}\n"

    assert run(config_file, "db", "current").stdout == f"{newest} (the newest revision)\n"
    assert "nothing to do" in run(config_file, "db", "upgrade").stdout


def test_init_upgrades_a_store_from_before_migrations_and_keeps_it(
    config_file: Path, database_url: str
) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, migrate.scripts().get_base() or "")
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
        with engine.begin() as connection:  # the columns of that first schema
            connection.execute(
                text(
                    "INSERT INTO team (handle, name, email, status, created_at) "
                    "VALUES ('kept', 'Kept', 'k@kept.example', 'accredited', '2026-01-01')"
                )
            )

        run(config_file, "init")

        assert migrate.current(engine) == migrate.head()
        with open_session(engine) as s:
            assert [t.handle for t in list_teams(s)] == ["kept"]
    finally:
        engine.dispose()
