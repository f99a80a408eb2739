"""A team that can submit but cannot be answered: `health` says so, and once it has a
usable key `messages resend-reply` gets it the receipt it missed. Receipts name the
primary fingerprint the team gave the operator, also for a signature by a subkey.

Through the CLI (`ingest`, `process`, `outbox flush`), with keys changed by the team on
the gpg command line; every receipt is decrypted and verified with the team's own key.
"""

from __future__ import annotations

import dataclasses
import email
import re
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import Cli
from support import TeamClient, config_toml

from gateway.app import App
from keys.gpg import GnuPG


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config, "[registry]\nwelcome_on_first_key = false\n"))
    return Cli(path)


def gpg(home: Path, *args: str) -> bytes:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    return subprocess.run([*cmd, "--passphrase", "", *args], check=True, capture_output=True).stdout


def key_file(team: TeamClient, tmp_path: Path) -> str:
    """The team's public key as `gpg --export --armor` gives it (expired subkeys too)."""
    path = tmp_path / f"{team.handle}-{time.monotonic_ns()}.asc"
    path.write_bytes(gpg(team.gpg.home, "--armor", "--export", team.fingerprint))
    return str(path)


def receipts(app: App, ch: Cli, team: TeamClient) -> list[str]:
    """Deliver the outbox; the text of every receipt in the maildir, decrypted and
    verified with the team's key."""
    ch("outbox", "flush")
    texts = []
    for path in sorted((app.config.outbound.maildir / "new").iterdir()):
        result = team.decrypt(path.read_bytes().split(b"\n", 1)[1])
        assert result.decrypted and [s.outcome for s in result.signatures] == ["good"]
        inner = email.message_from_bytes(result.data)
        assert inner["Subject"].startswith("Receipt: stored type1 2026-10 rev. 1")
        body = next(p for p in inner.walk() if p.get_content_type() == "text/plain")
        payload = body.get_payload(decode=True)
        assert isinstance(payload, bytes)
        texts.append(payload.decode().replace("\r\n", "\n"))
    return texts


def test_a_report_accepted_without_a_key_to_answer_gets_its_receipt_by_resend_reply(
    ch: Cli, app: App, tmp_path: Path
) -> None:
    home = tmp_path / "team"
    GnuPG(home)
    now = int(time.time())
    ten_days_ago = ["--faked-system-time", str(now - 10 * 86_400)]
    gpg(home, *ten_days_ago, "--quick-gen-key", "X <cert@x.example>", "future-default", "default")
    own = GnuPG(home)
    own.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    [fpr] = [k.fingerprint for k in own.keys_for_address("cert@x.example")]
    team = TeamClient("cert-x", "cert@x.example", own, fpr, app.identity.fingerprint)
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", team.email)
    ch("keys", "import", "cert-x", key_file(team, tmp_path))
    assert "team-keys    every team that may submit (1) has a usable key" in ch("health").stdout

    # The team's encryption subkey expired; the refresh says what that means, health too.
    details = own.details(fpr)
    assert details is not None
    an_hour_later = ["--faked-system-time", str(now - 10 * 86_400 + 3600)]  # a newer self-sig
    gpg(home, *an_hour_later, "--quick-set-expire", fpr, "1d", details.subkeys[0].fingerprint)
    refreshed = ch("keys", "import", "cert-x", key_file(team, tmp_path)).stdout
    assert f"refreshed {fpr} to cert-x: NOT usable: it cannot be encrypted to" in refreshed
    unhealthy = ch("health", code=1).stdout
    assert "FAIL  team-keys    1 team may submit but has no usable key: cert-x (it cannot" in (
        unhealthy
    )

    ch("ingest", input=team.submit())
    ch("process", "--once")
    [message] = ch.json("messages", "list")
    assert (message["state"], message["team"]) == ("accepted", "cert-x")
    assert "no receipt sent" in ch.json("messages", "show", "1")["detail"]
    assert ch.json("outbox", "list") == []
    assert "no usable key" in ch("messages", "resend-reply", "1", code=1).stderr

    gpg(home, "--quick-add-key", fpr, "cv25519", "encr")  # the team's new encryption subkey
    ch("keys", "import", "cert-x", key_file(team, tmp_path))
    ch("health")
    out = ch("messages", "resend-reply", "1").stdout
    assert f"receipt of message 1 queued to cert@x.example (outbox 1), encrypted to key {fpr}" in (
        out
    )
    [text] = receipts(app, ch, team)
    assert re.search(r"requests: +1204\n", text) and re.search(r"hours-spent: +940.5", text)
    assert f"signed by your key {fpr}" in text
    [entry] = [e for e in ch.json("audit") if e["action"] == "messages resend-reply"]
    assert entry["subject"] == "cert-x" and "receipt of message 1" in entry["details"]


def test_resend_reply_refuses_what_has_no_reply(ch: Cli, team: TeamClient, tmp_path: Path) -> None:
    assert "no message 7" in ch("messages", "resend-reply", "7", code=1).stderr
    stranger = team.with_new_key(tmp_path / "stranger", "Stranger")
    ch("ingest", input=stranger.submit())  # signed by a key bound to no team
    ch("process", "--once")
    refused = ch("messages", "resend-reply", "1", code=1).stderr
    assert "was quarantined (unknown-key)" in refused and "messages reprocess 1" in refused
    ch("ingest", input=team.submit())
    assert "is not processed yet" in ch("messages", "resend-reply", "2", code=1).stderr


def test_a_receipt_for_a_signing_subkey_names_the_primary_key(
    ch: Cli, app: App, team: TeamClient, tmp_path: Path
) -> None:
    gpg(team.gpg.home, "--quick-add-key", team.fingerprint, "ed25519", "sign")
    details = team.gpg.details(team.fingerprint)
    assert details is not None
    sub = next(s.fingerprint for s in details.subkeys if "s" in s.capabilities)
    ch("keys", "import", "alpha", key_file(team, tmp_path))
    by_subkey = dataclasses.replace(team, fingerprint=sub + "!")  # gpg: exactly this subkey

    ch("ingest", input=by_subkey.submit())
    ch("process", "--once")
    ch("messages", "resend-reply", "1")

    for text in receipts(app, ch, team):  # the receipt, and the one sent again
        assert f"signed by your key {team.fingerprint}\n(with its signing subkey {sub})." in text
