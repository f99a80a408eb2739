"""A gateway that is not there, or not usable: each wrong step gets one line naming the
real cause and what to do, and nothing is created but by `init` (issue: operators' wrong
steps). Runs in-process, with the pass's database where one is needed."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from cli_support import Cli
from click.testing import Result

from store import migrate
from store.db import make_engine


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["report", "monthly", "--no-send"], 1),
        (["teams", "list"], 1),
        (["messages", "list"], 1),
        (["health"], 1),
        (["ingest"], 75),  # the MTA keeps the message and retries
    ],
)
def test_commands_before_init_say_so_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line(Cli(None)(*args, code=code, input=b"Subject: x\r\n\r\nbody\r\n"))
    assert "clearinghouse init" in line and str(tmp_path / "var") in line
    assert list(tmp_path.iterdir()) == []


def test_one_config_file_finds_its_gateway_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "clearinghouse.toml"
    config.write_text('[clearinghouse]\nhome = "data"\n')
    monkeypatch.chdir(tmp_path / "etc")
    Cli(config)("init")
    for n, elsewhere in enumerate((tmp_path, Path("/"))):
        monkeypatch.chdir(elsewhere)
        Cli(config)("teams", "add", f"team-{n}", "--name", "T", "--email", "t@t.example")
        assert len(Cli(config).json("teams", "list")) == n + 1  # one registry, wherever
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["clearinghouse.toml", "data"]


def test_a_damaged_sqlite_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "ch.toml"
    config.write_text(f'[clearinghouse]\nhome = "{tmp_path / "var"}"\n')
    Cli(config)("init")
    (tmp_path / "var" / "clearinghouse.db").write_bytes(b"not a database at all " * 400)
    for args in (["teams", "list"], ["messages", "list", "--json"]):
        assert "not an SQLite database" in one_line(Cli(config)(*args, code=1))


def test_an_unsupported_database_url_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "ch.toml"
    config.write_text('[clearinghouse]\ndatabase_url = "mysql://user@db.example/stats"\n')
    line = one_line(Cli(config)("init", code=2))
    assert "database_url" in line and "'mysql' is not supported" in line


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "does not answer"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/no_such_database", "does not exist"),
    ],
)
def test_postgresql_problems_are_named_also_by_init(tmp_path: Path, url: str, cause: str) -> None:
    pytest.importorskip("psycopg")
    config = tmp_path / "ch.toml"
    config.write_text(f'[clearinghouse]\nhome = "{tmp_path / "var"}"\ndatabase_url = "{url}"\n')
    for args in (["init"], ["teams", "list"]):
        line = one_line(Cli(config)(*args, code=1))
        assert cause in line and "clearinghouse init" not in line
    line = one_line(Cli(config)("ingest", code=75, input=b"Subject: x\r\n\r\nbody\r\n"))
    assert cause in line


def test_a_schema_older_than_the_code_asks_for_db_upgrade(
    tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "ch.toml"
    config.write_text(
        f'[clearinghouse]\nhome = "{tmp_path / "var"}"\ndatabase_url = "{database_url}"\n'
    )
    base = migrate.scripts().get_base()
    assert base is not None and base != migrate.head()
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, base)  # a store an earlier version left
    finally:
        engine.dispose()
    assert "clearinghouse db upgrade" in one_line(Cli(config)("teams", "list", code=1))
    Cli(config)("db", "upgrade")
    assert Cli(config).json("teams", "list") == []


def test_version_needs_no_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    version = metadata.version("clearinghouse")
    assert Cli(None)("--version").stdout == f"clearinghouse, version {version}\n"
    assert list(tmp_path.iterdir()) == []
