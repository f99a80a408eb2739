"""The units under systemd/ pass `systemd/verify-units` (systemd-analyze verify, the
ExecStart command lines, sysusers and tmpfiles in a scratch root), and the script fails
on a broken unit. CI installs systemd's tools; elsewhere the test is skipped without them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config.sections import SmtpConfig
from gateway.intake.smtp_guard import FILES_BESIDE_CONNECTIONS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "systemd" / "verify-units"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (Debian: systemd)"
)


def _binary() -> Path:
    """The `clearinghouse` of the environment running the tests."""
    found = Path(sys.executable).parent / "clearinghouse"
    if not found.exists():
        pytest.skip("no clearinghouse script beside the interpreter (pip install -e .)")
    return found


def verify(units: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(SCRIPT), str(_binary())] + ([str(units)] if units else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_the_shipped_units_verify() -> None:
    result = verify()
    assert result.returncode == 0, result.stderr
    assert "sysusers and tmpfiles OK" in result.stdout


def _copy(tmp_path: Path) -> Path:
    units = tmp_path / "units"
    shutil.copytree(ROOT / "systemd", units)
    return units


def test_a_misspelt_key_fails(tmp_path: Path) -> None:
    units = _copy(tmp_path)
    service = units / "clearinghouse.service"
    service.write_text(service.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = verify(units)
    assert result.returncode == 1 and "NoNewPrivilege" in result.stderr


def test_an_unknown_command_fails(tmp_path: Path) -> None:
    units = _copy(tmp_path)
    monthly = units / "clearinghouse-monthly.service"
    monthly.write_text(monthly.read_text().replace("report monthly", "report yearly"))
    result = verify(units)
    assert result.returncode == 1 and "report yearly" in result.stderr


def test_the_service_is_hardened() -> None:
    for name in (
        "clearinghouse.service",
        "clearinghouse-monthly.service",
        "clearinghouse-ti-sync.service",
    ):
        text = (ROOT / "systemd" / name).read_text()
        lines = set(text.splitlines())
        assert {
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "ReadWritePaths=/var/lib/clearinghouse",
            "User=clearinghouse",
        } <= lines, name


def test_the_service_has_file_descriptors_for_its_connections() -> None:
    """1,100 idle connections exhausted the default limit: the unit raises it well above
    what the door holds at most ([smtp] max_connections) and what it needs beside."""
    text = (ROOT / "systemd" / "clearinghouse.service").read_text()
    [limit] = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("LimitNOFILE=")
    ]
    needed = SmtpConfig().max_connections + FILES_BESIDE_CONNECTIONS
    assert int(limit) >= 10 * needed
