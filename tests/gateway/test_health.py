"""`clearinghouse health`: OK on a fresh gateway, and a failure (exit 1) for each of a
stuck outbox, a backed-up spool, and a gateway key about to expire (or missing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support import INTAKE, TYPE1, TeamClient, config_toml

from gateway.app import App
from gateway.cli import cli
from gateway.health import check_gateway_key, run_checks
from gateway.spool import accept
from keys.identity import FPR_FILE
from store import outbox
from store.db import transaction
from store.models import OutboxEntry

PLAIN = f"From: cert@alpha.example\r\nTo: {INTAKE}\r\n\r\n{TYPE1}".encode()


def health(app: App, tmp_path: Path, extra: str = "", *args: str) -> Result:
    config = tmp_path / "health.toml"
    config.write_text(config_toml(app.config, extra))
    result = CliRunner().invoke(cli, ["--config", str(config), "health", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def verdicts(result: Result) -> dict[str, bool]:
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return {r["name"]: r["ok"] for r in rows}


def test_a_fresh_gateway_is_healthy(app: App, tmp_path: Path) -> None:
    result = health(app, tmp_path)
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["ok", "outbox"],
        ["ok", "spool"],
        ["ok", "gateway-key"],
        ["ok", "ti-directory"],
        ["ok", "ti-keys"],
        ["ok", "team-keys"],
    ]
    assert "does not expire" in result.stdout
    assert "no team is linked to the TI directory" in result.stdout
    as_json = health(app, tmp_path, "", "--json")
    assert verdicts(as_json) == {
        "outbox": True,
        "spool": True,
        "gateway-key": True,
        "ti-directory": True,
        "ti-keys": True,
        "team-keys": True,
    }


def _queue(app: App, age: timedelta) -> None:
    with transaction(app.engine) as s:
        entry = outbox.enqueue(
            s, kind="receipt", recipient="cert@alpha.example", raw=b"x", dedupe_key=f"k{age}"
        )
        assert isinstance(entry, OutboxEntry)
        entry.created_at = datetime.now(UTC) - age
        s.add(entry)


def test_a_stuck_outbox_fails(app: App, tmp_path: Path) -> None:
    _queue(app, timedelta(minutes=5))
    assert health(app, tmp_path).exit_code == 0  # waiting, but not for long
    _queue(app, timedelta(hours=3))

    result = health(app, tmp_path, "[health]\noutbox_stuck_minutes = 90\n", "--json")

    assert result.exit_code == 1
    assert verdicts(result) == {
        "outbox": False,
        "spool": True,
        "gateway-key": True,
        "ti-directory": True,
        "ti-keys": True,
        "team-keys": True,
    }
    text = health(app, tmp_path, "[health]\noutbox_stuck_minutes = 90\n").stdout
    assert "FAIL  outbox" in text and "2 waiting for delivery" in text and "outbox list" in text
    assert health(app, tmp_path, "[health]\noutbox_stuck_minutes = 240\n").exit_code == 0


def test_a_backed_up_spool_fails(app: App, tmp_path: Path) -> None:
    for n in range(3):
        accept(app.engine, PLAIN + str(n).encode(), "ingest")  # nobody processes them
    assert health(app, tmp_path, "[health]\nspool_backlog = 3\n").exit_code == 0

    result = health(app, tmp_path, "[health]\nspool_backlog = 2\n")

    assert result.exit_code == 1
    assert "FAIL  spool" in result.stdout and "3 messages waiting" in result.stdout


def _gateway_key_expiring(app: App, expire: str) -> str:
    """Replace the gateway key by one that expires after `expire` (gpg's 10d, 1y...)."""
    fingerprint = app.gpg.generate_key("Expiring Clearinghouse", INTAKE, expire=expire)
    (app.gpg.home / FPR_FILE).write_text(fingerprint + "\n")
    return fingerprint


def test_a_gateway_key_about_to_expire_fails(app: App, tmp_path: Path) -> None:
    fingerprint = _gateway_key_expiring(app, "10d")

    result = health(app, tmp_path, "[health]\nkey_expiry_days = 30\n")

    assert result.exit_code == 1
    assert "FAIL  gateway-key" in result.stdout and fingerprint in result.stdout
    assert "in 9 days" in result.stdout or "in 10 days" in result.stdout
    assert health(app, tmp_path, "[health]\nkey_expiry_days = 5\n").exit_code == 0


def test_an_expired_or_missing_gateway_key_fails(app: App, app_with: Callable[..., App]) -> None:
    _gateway_key_expiring(app, "1d")
    later = datetime.now(UTC) + timedelta(days=3)
    check = check_gateway_key(app_with(), later)  # a fresh App reads the key file anew
    assert not check.ok and "EXPIRED" in check.detail

    (app.gpg.home / FPR_FILE).unlink()
    missing = check_gateway_key(app_with(), datetime.now(UTC))
    assert not missing.ok and "clearinghouse init" in missing.detail


@pytest.mark.parametrize("now_offset", [timedelta(0), timedelta(days=400)])
def test_run_checks_names_every_check(app: App, now_offset: timedelta) -> None:
    checks = run_checks(app, datetime.now(UTC) + now_offset)
    assert [c.name for c in checks] == [
        "outbox",
        "spool",
        "gateway-key",
        "ti-directory",
        "ti-keys",
        "team-keys",
    ]
    assert all(c.ok for c in checks)  # nothing waits, and the key never expires


def test_a_team_that_may_submit_without_a_usable_key_fails(
    app: App, tmp_path: Path, make_team: Callable[..., TeamClient]
) -> None:
    alpha = make_team("alpha")
    app.registry.add_team("beta", name="Beta", email="cert@beta.example")
    result = health(app, tmp_path)
    assert result.exit_code == 1
    assert "FAIL  team-keys    1 team may submit but has no usable key: beta (no key bound)" in (
        result.stdout
    )
    app.registry.set_status("beta", "suspended")  # may not submit: nothing to answer
    assert health(app, tmp_path).exit_code == 0
    app.registry.revoke_key(alpha.fingerprint, "lost")
    assert "alpha (every bound key is revoked)" in health(app, tmp_path).stdout


@pytest.mark.parametrize("command", [("health",), ("report", "monthly", "--no-send"), ("ingest",)])
def test_a_broken_taxonomy_file_is_a_configuration_error_before_any_command_runs(
    app: App, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """One line naming the file and what to do, exit 2 (ingest: 75, the MTA keeps the
    message), never a traceback from the first command that reads the taxonomy."""
    extra = tmp_path / "taxonomy-extra.toml"
    extra.write_text("[[class]]\nslug = 'Not A Slug'\nname = 'x'\n")
    config = tmp_path / "health.toml"
    config.write_text(config_toml(app.config, f"[taxonomy]\nextra_file = '{extra}'\n"))
    result = CliRunner().invoke(cli, ["--config", str(config), *command], input=PLAIN)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == (75 if command == ("ingest",) else 2), result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {config}: [taxonomy] extra_file: {extra}: ")
    assert "'Not A Slug' must be lower-case words" in line and "Traceback" not in line
