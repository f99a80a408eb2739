"""Fixtures of the unwrap tests: a gateway keyring and a team that knows it (fresh keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import INTAKE, TeamClient

from keys.gpg import GnuPG


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[GnuPG, str]:
    gpg = GnuPG(tmp_path / "gateway")
    return gpg, gpg.generate_key("Clearinghouse", INTAKE)


@pytest.fixture
def team(tmp_path: Path, gateway: tuple[GnuPG, str]) -> TeamClient:
    gw, gw_fpr = gateway
    gpg = GnuPG(tmp_path / "team")
    fpr = gpg.generate_key("CERT Alpha", "cert@alpha.example")
    gpg.import_keys(gw.export_public(gw_fpr).encode())
    gw.import_keys(gpg.export_public(fpr).encode())
    return TeamClient("alpha", "cert@alpha.example", gpg, fpr, gw_fpr)
