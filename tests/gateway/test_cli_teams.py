"""`teams show` as an admin reads it, and `teams remove` for a team registered by mistake.

Keys are real GnuPG keys made with the gpg command line, as a team makes them.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import Cli
from support import TeamClient, config_toml

from gateway.app import App
from keys.gpg import GnuPG


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


def gpg(home: Path, *args: str) -> bytes:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    return subprocess.run([*cmd, "--passphrase", "", *args], check=True, capture_output=True).stdout


def test_teams_show_is_readable_and_names_the_subkey_that_expires(ch: Cli, tmp_path: Path) -> None:
    """A certify-only primary that never expires, with a signing subkey that does: the key
    stops being usable when the subkey expires, and the listing says so."""
    home = tmp_path / "team"
    gpg(home, "--quick-gen-key", "CERT X <incidents@cert-x.example>", "ed25519", "cert", "never")
    listing = gpg(home, "--with-colons", "-k").decode()
    fpr = next(row.split(":")[9] for row in listing.splitlines() if row.startswith("fpr:"))
    gpg(home, "--quick-add-key", fpr, "ed25519", "sign", "1y")
    gpg(home, "--quick-add-key", fpr, "cv25519", "encr", "never")
    (tmp_path / "x.asc").write_bytes(gpg(home, "--armor", "--export", fpr))
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    ch("keys", "import", "cert-x", str(tmp_path / "x.asc"))
    in_a_year = datetime.now(UTC) + timedelta(days=365)

    text = ch("teams", "show", "cert-x").stdout

    assert "{" not in text and "no expiry" not in text  # no JSON blob, no false comfort
    assert "status           accredited (may submit)" in text
    assert "keys             1 (1 usable)" in text
    key_line = next(line for line in text.splitlines() if line.startswith(f"key {fpr}"))
    assert f"usable until {in_a_year:%Y-%m-%d}" in key_line or (
        f"usable until {in_a_year - timedelta(days=1):%Y-%m-%d}" in key_line
    )
    assert "  primary   certify, created" in text and "does not expire" in text
    signing = next(line for line in text.splitlines() if ", expires " in line)
    assert signing.startswith("  subkey    ") and "  sign, created" in signing
    assert "  user ID   CERT X <incidents@cert-x.example>" in text

    shown = ch.json("teams", "show", "cert-x")
    [key] = shown["keys"]
    assert key["usable"] and key["fingerprint"] == fpr and key["capabilities"] == ["certify"]
    assert [(s["capabilities"], s["expires_at"] is None) for s in key["subkeys"]] == [
        (["sign"], False),
        (["encrypt"], True),
    ]
    assert key["usable_until"] == key["subkeys"][0]["expires_at"] and shown["may_submit"]


def test_teams_show_says_why_a_key_is_not_usable(ch: Cli, app: App, team: TeamClient) -> None:
    ch("keys", "revoke", team.fingerprint, "--reason", "lost")
    text = ch("teams", "show", "alpha").stdout
    assert "keys             1 (0 usable)" in text
    assert f"key {team.fingerprint}  REVOKED " in text and ": lost" in text
    assert ch.json("teams", "show", "alpha")["keys"][0]["problems"] == ["revoked in the registry"]


def test_teams_remove_a_team_without_submissions(ch: Cli, app: App, tmp_path: Path) -> None:
    team = GnuPG(tmp_path / "typo")
    fpr = team.generate_key("CERT X", "incidents@cert-x.example")
    (tmp_path / "x.asc").write_text(team.export_public(fpr))
    ch("teams", "add", "cret-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    ch("keys", "import", "cret-x", str(tmp_path / "x.asc"))

    out = ch("teams", "remove", "cret-x").stdout

    assert f"team cret-x removed; its keys {fpr} left the registry and the keyring" in out
    assert ch.json("teams", "list") == [] and ch.json("keys", "list") == []
    assert app.gpg.details(fpr) is None
    [entry] = [e for e in ch.json("audit") if e["action"] == "teams remove"]
    assert entry["subject"] == "cret-x" and fpr in entry["details"]
    # The same key can now go to the team it was meant for.
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    assert (
        f"bound {fpr} to cert-x" in ch("keys", "import", "cert-x", str(tmp_path / "x.asc")).stdout
    )
    assert "no team 'cret-x'" in ch("teams", "remove", "cret-x", code=1).stderr


def test_teams_remove_refuses_a_team_with_submissions(ch: Cli, team: TeamClient) -> None:
    ch("ingest", input=team.submit())
    ch("process", "--once")
    refused = ch("teams", "remove", "alpha", code=1).stderr
    assert "has 1 stored submission and is not removed" in refused
    assert "`teams set-status alpha suspended`" in refused
    assert [t["handle"] for t in ch.json("teams", "list")] == ["alpha"]


def test_teams_remove_keeps_the_teams_refused_messages(ch: Cli, app: App, team: TeamClient) -> None:
    ch("keys", "revoke", team.fingerprint)
    ch("ingest", input=team.submit())
    ch("process", "--once")
    [message] = ch.json("messages", "list")
    assert (message["state"], message["team"]) == ("quarantined", "alpha")
    ch("teams", "remove", "alpha")
    [message] = ch.json("messages", "list")
    assert (message["state"], message["team"]) == ("quarantined", None)
