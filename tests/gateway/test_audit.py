"""The audit log: every registry and gateway-key change, with who and when, committed
with the change itself; refused changes leave no entry.

Commands run in-process with click's CliRunner on a fresh data directory (so `init` is
recorded too); keys are generated per test.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from keys.gpg import GnuPG
from store.audit import local_actor


class Cli:
    def __init__(self, config: Path) -> None:
        self.config = config

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}"
        return result

    def audit(self, *args: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self("audit", "--json", *args).stdout)
        return rows


@pytest.fixture
def ch(tmp_path: Path) -> Cli:
    config = tmp_path / "audit.toml"
    config.write_text(f"[clearinghouse]\nhome = {json.dumps(str(tmp_path / 'var'))}\n")
    return Cli(config)


def own_key(tmp_path: Path, name: str, email: str) -> tuple[str, Path]:
    gpg = GnuPG(tmp_path / f"own-{name}")
    fingerprint = gpg.generate_key(name, email)
    path = tmp_path / f"{name}.asc"
    path.write_text(gpg.export_public(fingerprint))
    return fingerprint, path


def test_every_registry_change_is_recorded_with_who_and_when(ch: Cli, tmp_path: Path) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    team_fpr, team_key = own_key(tmp_path, "alpha", "cert@alpha.example")
    coordinator_fpr, coordinator_key = own_key(tmp_path, "coord", "coord@ch.example")

    gateway_fpr = ch("init").stdout.strip()
    ch("teams", "add", "alpha", "--name", "CERT Alpha", "--email", "cert@alpha.example")
    ch("teams", "set-status", "alpha", "certified")
    ch("keys", "import", "alpha", str(team_key))
    ch("keys", "revoke", team_fpr, "--reason", "laptop stolen")
    ch("coordinators", "add", "coord@ch.example", "--key", str(coordinator_key))
    ch("coordinators", "remove", "coord@ch.example")

    entries = ch.audit()
    assert [(e["action"], e["subject"]) for e in entries] == [
        ("gateway-key init", gateway_fpr),
        ("teams add", "alpha"),
        ("teams set-status", "alpha"),
        ("keys import", team_fpr),
        ("teams welcome", "alpha"),  # its first usable key: `[registry] welcome_on_first_key`
        ("keys revoke", team_fpr),
        ("coordinators add", "coord@ch.example"),
        ("coordinators remove", "coord@ch.example"),
    ]
    assert {e["actor"] for e in entries} == {local_actor()}
    assert all(started <= datetime.fromisoformat(e["at"]) <= datetime.now(UTC) for e in entries)
    details = {e["action"]: e["details"] for e in entries}
    assert details["teams set-status"] == "accredited -> certified"
    assert details["keys import"] == "bound to alpha: alpha <cert@alpha.example>"
    assert details["keys revoke"] == "laptop stolen"
    assert coordinator_fpr in details["coordinators add"]

    table = ch("audit").stdout.splitlines()
    assert table[0].split() == ["ID", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAILS"]
    assert len(table) == 1 + len(entries)
    assert [e["action"] for e in ch.audit("--subject", "alpha")] == [
        "teams add",
        "teams set-status",
        "teams welcome",
    ]
    assert [e["action"] for e in ch.audit("--limit", "2")] == [
        "coordinators add",
        "coordinators remove",
    ]


def test_sudo_names_the_person_behind_the_service_user(
    ch: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUDO_USER", "alice-admin")
    ch("init")
    ch("teams", "add", "alpha", "--name", "CERT Alpha", "--email", "cert@alpha.example")
    [_, added] = ch.audit()
    assert added["actor"].endswith("(sudo: alice-admin)")


def test_refused_changes_leave_no_entry(ch: Cli, tmp_path: Path) -> None:
    _, key = own_key(tmp_path, "alpha", "cert@alpha.example")
    ch("init")
    ch("teams", "add", "alpha", "--name", "CERT Alpha", "--email", "cert@alpha.example")
    ch("teams", "add", "bravo", "--name", "CERT Bravo", "--email", "cert@bravo.example")
    ch("keys", "import", "alpha", str(key))
    before = ch.audit()

    ch("teams", "add", "alpha", "--name", "Again", "--email", "x@alpha.example", code=1)
    ch("keys", "import", "bravo", str(key), code=1)  # bound to alpha already
    ch("keys", "revoke", "0" * 40, code=1)
    ch("teams", "set-status", "nobody", "suspended", code=1)
    ch("coordinators", "remove", "nobody@ch.example", code=1)

    assert ch.audit() == before


def test_adopting_a_gateway_key_is_recorded(ch: Cli, tmp_path: Path) -> None:
    home = tmp_path / "old-gateway"
    old = GnuPG(home)
    fingerprint = old.generate_key("Old Clearinghouse", "stats@clearinghouse.example")
    exported = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--armor", "--export-secret-keys", fingerprint],
        capture_output=True,
        check=True,
    ).stdout
    key_file = tmp_path / "gateway-secret.asc"
    key_file.write_bytes(exported)

    assert ch("gateway-key", "import", str(key_file)).stdout.strip() == fingerprint

    [entry] = ch.audit()
    assert (entry["action"], entry["subject"]) == ("gateway-key import", fingerprint)
    assert entry["details"] == "without a passphrase"
