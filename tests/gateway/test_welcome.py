"""The onboarding mail, as a new team lives it (docs/reference.md "Onboarding").

The team has only its own keyring and key. The operator registers it and imports its key
with the CLI; the welcome goes out on that first usable key. The team decrypts it with
its own key, imports the attached gateway key with plain `gpg`, checks the fingerprint
the mail states, verifies the mail's signature, and sends its first report over SMTP to
the real intake door: it is accepted.
"""

from __future__ import annotations

import email
import email.message
import re
import smtplib
import subprocess
from pathlib import Path

import pytest
from cli_support import Cli
from smtp_support import HOST, Start
from support import INTAKE, TYPE1, TeamClient, config_toml

from gateway.app import App
from keys.gpg import GnuPG


def ch_for(app: App, tmp_path: Path, extra: str = "") -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config, extra))
    return Cli(path)


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    return ch_for(app, tmp_path)


def new_team(tmp_path: Path, handle: str = "cert-x") -> tuple[GnuPG, str, Path]:
    """A team's own keyring (no gateway key in it) and its public key in a file."""
    gpg = GnuPG(tmp_path / f"own-{handle}")
    fpr = gpg.generate_key(f"CERT {handle}", f"incidents@{handle}.example")
    key_file = tmp_path / f"{handle}.asc"
    key_file.write_text(gpg.export_public(fpr))
    return gpg, fpr, key_file


def delivered(app: App, ch: Cli) -> list[bytes]:
    """Deliver the outbox into the maildir; every mail there, without Delivered-To."""
    ch("outbox", "flush")
    files = sorted((app.config.outbound.maildir / "new").iterdir())
    return [f.read_bytes().split(b"\n", 1)[1] for f in files]


def parts(plaintext: bytes) -> tuple[email.message.Message, str, bytes]:
    """The decrypted welcome: its MIME root, its text, its attached key."""
    inner = email.message_from_bytes(plaintext)
    text = next(p for p in inner.walk() if p.get_content_type() == "text/plain")
    key = next(p for p in inner.walk() if p.get_content_type() == "application/pgp-keys")
    body, attached = text.get_payload(decode=True), key.get_payload(decode=True)
    assert isinstance(body, bytes) and isinstance(attached, bytes)
    return inner, body.decode("utf-8"), attached


def test_a_new_team_is_welcomed_and_sends_with_what_the_welcome_gave_it(
    ch: Cli, app: App, tmp_path: Path, smtp_server: Start
) -> None:
    gpg, fpr, key_file = new_team(tmp_path)
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    out = ch("keys", "import", "cert-x", str(key_file)).stdout
    assert "welcome mail queued to incidents@cert-x.example" in out
    [mail] = delivered(app, ch)
    outer = email.message_from_bytes(mail)
    assert outer["To"] == "incidents@cert-x.example" and outer["Subject"] == "[...]"

    # Decrypted with the team's key; the signer is not known to the team yet.
    team = TeamClient("cert-x", "incidents@cert-x.example", gpg, fpr, app.identity.fingerprint)
    first = team.decrypt(mail)
    assert first.decrypted and [s.error_code for s in first.signatures] == [9]
    inner, text, attached = parts(first.data)
    assert inner["Subject"] == "Welcome to Clearinghouse: how to send"

    # The attached key, imported with plain gpg, is the one whose fingerprint the text gives.
    (tmp_path / "clearinghouse-key.asc").write_bytes(attached)
    subprocess.run(
        ["gpg", "--homedir", str(gpg.home), "--batch", "--import", "clearinghouse-key.asc"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    stated = re.search(r"fingerprint is\s+((?:[0-9A-F]{4} ?){10})", text)
    assert stated is not None and stated[1].replace(" ", "") == app.identity.fingerprint
    again = team.decrypt(mail)
    [signature] = again.signatures
    assert signature.outcome == "good"
    assert signature.primary_fingerprint == app.identity.fingerprint

    # What the team needs to know is in it.
    assert INTAKE in text and fpr in text
    assert 'Your status is "accredited". It allows you to submit statistics.' in text
    assert "at most 30 days before it arrives" in text
    assert "sent from an address at cert-x.example" in text
    assert "PGP/MIME (RFC 3156)" in text
    assert "Report: type1" in text and "Hours-Spent:" in text
    assert "Report: type2" in text and "Malicious Code / Virus:" in text

    # And with it, the team's first report is accepted.
    port = smtp_server()
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.sendmail(team.email, [INTAKE], team.submit(TYPE1))
    ch("process", "--once")
    [message] = ch.json("messages", "list")
    assert (message["state"], message["reason"], message["team"]) == ("accepted", None, "cert-x")


def test_the_welcome_goes_once_and_again_on_resend(ch: Cli, app: App, tmp_path: Path) -> None:
    _, _, key_file = new_team(tmp_path)
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    ch("keys", "import", "cert-x", str(key_file))
    # A second key is not the first: no second welcome.
    second = GnuPG(tmp_path / "second")
    second_fpr = second.generate_key("CERT X 2", "incidents@cert-x.example")
    (tmp_path / "second.asc").write_text(second.export_public(second_fpr))
    assert "welcome" not in ch("keys", "import", "cert-x", str(tmp_path / "second.asc")).stdout
    assert "was sent before" in ch("teams", "welcome", "cert-x").stdout
    assert "welcome mail queued" in ch("teams", "welcome", "cert-x", "--resend").stdout
    kinds = [row["kind"] for row in ch.json("outbox", "list")]
    assert kinds == ["welcome", "welcome"]
    welcomes = [e for e in ch.json("audit") if e["action"] == "teams welcome"]
    assert [e["subject"] for e in welcomes] == ["cert-x", "cert-x"]
    assert "sent again" in welcomes[1]["details"]


def test_no_automatic_welcome_when_turned_off(app: App, tmp_path: Path) -> None:
    ch = ch_for(app, tmp_path, "[registry]\nwelcome_on_first_key = false\n")
    _, _, key_file = new_team(tmp_path)
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    assert "welcome" not in ch("keys", "import", "cert-x", str(key_file)).stdout
    assert ch.json("outbox", "list") == []
    assert "welcome mail queued" in ch("teams", "welcome", "cert-x").stdout


def test_no_welcome_without_a_key_to_encrypt_to(ch: Cli) -> None:
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    refused = ch("teams", "welcome", "cert-x", code=1).stderr
    assert "no usable key" in refused and "keys import cert-x" in refused
    assert "no team 'nope'" in ch("teams", "welcome", "nope", code=1).stderr
