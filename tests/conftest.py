"""Fixtures shared by every test: a fresh gateway (data dir, database, GnuPG home, key)
and registered teams, each with its own GnuPG home and a freshly generated ed25519 key.

The database is SQLite, or with CLEARINGHOUSE_TEST_DATABASE=postgresql a PostgreSQL
schema of the test's own (tests/databases.py). No key material is committed: everything
is generated per test in tmp_path (ed25519 keys take a few tens of milliseconds).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import backend, fresh_database
from smtp_support import HOST, Start, free_port, make_certificate
from support import INTAKE, TeamClient, with_changes

from gateway.app import App
from gateway.config import Config, default_config
from gateway.delivery import MaildirTransport
from gateway.intake.smtp import make_controller
from gateway.worker import Worker
from keys.gpg import GnuPG
from keys.identity import create_identity


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, saying why, the PostgreSQL-only tests in the SQLite pass."""
    if backend() == "postgresql":
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL only: several gateway instances share a store only on PostgreSQL "
        "(SQLite is single-instance by design); runs with CLEARINGHOUSE_TEST_DATABASE=postgresql"
    )
    for item in items:
        if item.get_closest_marker("postgresql_only"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _stop_gpg_agents(tmp_path: Path) -> Iterator[None]:
    """Stop the gpg-agents this test's GnuPG homes started: they outlive the test."""
    yield
    for keyring in tmp_path.rglob("pubring.kbx"):
        subprocess.run(
            ["gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
            timeout=60,  # a stuck agent fails the test instead of stalling the run
        )


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """This test's database: SQLite under the data directory, or a PostgreSQL schema."""
    with fresh_database(tmp_path / "var") as url:
        yield url


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return with_changes(default_config(tmp_path / "var"), core={"database_url": database_url})


@pytest.fixture
def app(config: Config) -> Iterator[App]:
    application = App(config)
    application.initialise()
    create_identity(application.gpg, "Test Clearinghouse", INTAKE)
    yield application
    application.engine.dispose()


@pytest.fixture
def app_with(app: App) -> Iterator[Callable[..., App]]:
    """app_with(section={key: value}, ...) -> a fresh App on `app`'s home, keyring and
    database, with `app`'s clock, its configuration changed in those keys.

    Fresh means nothing is cached: its policy, keyring, unwrapper and identity are built
    from the changed configuration and from what is on disk now (`app_with()` reads a
    replaced gateway key anew). The one way a test gets an App configured otherwise.
    """
    made: list[App] = []

    def make(**sections: dict[str, Any]) -> App:
        made.append(dataclasses.replace(app, config=with_changes(app.config, **sections)))
        return made[-1]

    yield make
    for fresh in made:
        if "engine" in vars(fresh):  # only those that made one: no engine made to dispose
            fresh.engine.dispose()


@pytest.fixture
def make_team(app: App, tmp_path: Path) -> Callable[..., TeamClient]:
    """Register a team with a fresh key; returns its client side."""

    def make(
        handle: str, *, email: str | None = None, status: str = "accredited", expire: str = "0"
    ) -> TeamClient:
        address = email or f"cert@{handle}.example"
        team_gpg = GnuPG(tmp_path / f"team-{handle}")
        fpr = team_gpg.generate_key(f"CERT {handle}", address, expire=expire)
        team_gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
        app.registry.add_team(handle, name=f"CERT {handle.upper()}", email=address, status=status)
        app.registry.import_keys(handle, team_gpg.export_public(fpr).encode())
        return TeamClient(handle, address, team_gpg, fpr, app.identity.fingerprint)

    return make


@pytest.fixture
def team(make_team: Callable[..., TeamClient]) -> TeamClient:
    return make_team("alpha")


@pytest.fixture
def worker(app: App) -> Worker:
    return Worker(app, MaildirTransport(app.config.outbound.maildir))


@pytest.fixture
def smtp_server(app: App, app_with: Callable[..., App]) -> Iterator[Start]:
    """start(**smtp_section_changes) -> port of a running intake server for `app`."""
    controllers: list[Any] = []

    def run(on_stored: Callable[[int], None] | None = None, **smtp: Any) -> int:
        target = app_with(smtp=smtp) if smtp else app
        port = free_port()
        controller = make_controller(target, HOST, port, on_stored=on_stored)
        controller.start()
        controllers.append(controller)
        return port

    yield run
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key) PEM files."""
    return make_certificate(tmp_path_factory.mktemp("tls"))
