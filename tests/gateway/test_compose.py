"""Team-side `compose` and `template`: what a team's cron job builds, the gateway accepts,
and plain `gpg` decrypts, as a mail client would.

`compose` runs through the real command line (CliRunner) with no gateway configuration at
all, against the team's own GnuPG home; its output goes through the real pipeline.
"""

from __future__ import annotations

import email
import re
import subprocess
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from smtp_support import Start
from support import INTAKE, TYPE1, TYPE2, TeamClient

from gateway.app import App
from gateway.cli import cli
from gateway.spool import accept
from gateway.worker import Worker
from keys.gpg import GnuPG
from parsers.model import TYPE1_FIELDS, Type1Report
from parsers.taxonomy import load_taxonomy
from parsers.text import parse_text
from reports.periods import previous_period
from store import spool
from store.db import open_session
from store.submission_rows import list_submissions

FORMS = ("combined", "signed-then-encrypted", "inline")


def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}"
    return result


def compose(team: TeamClient, report: Path, *extra: str, code: int = 0) -> Result:
    # CLEARINGHOUSE_CONFIG points nowhere: compose must not read a gateway configuration.
    return run(
        "compose",
        "--report",
        str(report),
        "--key-id",
        team.fingerprint,
        "--to",
        INTAKE,
        "--gnupghome",
        str(team.gpg.home),
        *extra,
        code=code,
        env={"CLEARINGHOUSE_CONFIG": "/nonexistent/clearinghouse.toml"},
    )


def outcome(app: App, raw: bytes, worker: Worker) -> tuple[str, str | None]:
    message_id, _ = accept(app.engine, raw, "smtp")
    worker.run_once()
    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id)
        assert message is not None
        return message.state, message.reason


def gpg_cli(home: Path, *args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """Plain gpg, as a mail client runs it, on the gateway's keyring."""
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--status-fd", "2", *args],
        input=data,
        capture_output=True,
        check=False,
    )


def _text(entity: Message) -> str:
    parts = [
        p.get_payload(decode=True) for p in entity.walk() if p.get_content_type() == "text/plain"
    ]
    return "".join(p.decode() for p in parts if isinstance(p, bytes))


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text(TYPE1 + "\n" + TYPE2)
    return path


@pytest.mark.parametrize("form", FORMS)
def test_compose_output_is_accepted_by_the_gateway(
    app: App, team: TeamClient, worker: Worker, report: Path, tmp_path: Path, form: str
) -> None:
    out = tmp_path / "message.eml"
    assert compose(team, report, "--form", form, "--output", str(out)).stdout == ""

    raw = out.read_bytes()
    headers = email.message_from_bytes(raw)
    assert (headers["From"], headers["To"]) == (team.email, INTAKE)  # From: the key's address
    assert outcome(app, raw, worker) == ("accepted", None)
    with open_session(app.engine) as s:
        assert [(r.team, r.type) for r in list_submissions(s)] == [
            ("alpha", "type1"),
            ("alpha", "type2"),
        ]


@pytest.mark.parametrize("form", FORMS)
def test_plain_gpg_decrypts_and_verifies_it(
    app: App, team: TeamClient, report: Path, tmp_path: Path, form: str
) -> None:
    out = tmp_path / "message.eml"
    compose(team, report, "--form", form, "--output", str(out))
    mail = email.message_from_bytes(out.read_bytes())
    if form == "inline":
        ciphertext = mail.get_payload(decode=True)
    else:
        assert mail.get_content_type() == "multipart/encrypted"
        [data] = [p for p in mail.walk() if p.get_content_type() == "application/octet-stream"]
        ciphertext = data.get_payload(decode=True)
    assert isinstance(ciphertext, bytes)

    decrypted = gpg_cli(app.gpg.home, "--decrypt", data=ciphertext)

    assert decrypted.returncode == 0, decrypted.stderr.decode()
    status = decrypted.stderr.decode()
    assert "[GNUPG:] DECRYPTION_OKAY" in status
    if form == "signed-then-encrypted":
        entity, signature = _split_signed(decrypted.stdout)
        sig_file = tmp_path / "signature.asc"
        sig_file.write_bytes(signature)
        verified = gpg_cli(app.gpg.home, "--verify", str(sig_file), "-", data=entity)
        assert verified.returncode == 0, verified.stderr.decode()
        status = verified.stderr.decode()
        text = _text(email.message_from_bytes(entity))
    else:
        text = (
            decrypted.stdout.decode()
            if form == "inline"
            else _text(email.message_from_bytes(decrypted.stdout))
        )
    assert f"[GNUPG:] GOODSIG {team.fingerprint[-16:]}" in status
    assert "Requests: 1204" in text and "Intrusions: 3" in text


def _split_signed(data: bytes) -> tuple[bytes, bytes]:
    """The signed entity's exact bytes and the signature of an RFC 3156 multipart/signed."""
    boundary = email.message_from_bytes(data).get_boundary()
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.encode()
    _, first = data.split(b"--" + boundary.encode() + b"\r\n", 1)
    entity, rest = first.split(delimiter, 1)
    signature = email.message_from_bytes(rest.split(b"\r\n", 1)[1].split(delimiter)[0])
    payload = signature.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return entity, payload


def test_the_gateway_key_can_come_from_a_file(
    app: App, worker: Worker, report: Path, tmp_path: Path
) -> None:
    """A team keyring that has never seen the gateway key: --gateway-key imports it."""
    gpg = GnuPG(tmp_path / "team-fresh")
    fingerprint = gpg.generate_key("CERT Fresh", "cert@fresh.example")
    app.registry.add_team("fresh", name="CERT Fresh", email="cert@fresh.example")
    app.registry.import_keys("fresh", gpg.export_public(fingerprint).encode())
    fresh = TeamClient("fresh", "cert@fresh.example", gpg, fingerprint, app.identity.fingerprint)
    out = tmp_path / "message.eml"

    failed = compose(fresh, report, "--output", str(out), code=2)
    assert "gateway key" in failed.stderr and "--gateway-key" in failed.stderr
    assert not out.exists()

    key_file = tmp_path / "gateway.asc"
    key_file.write_text(app.gpg.export_public(app.identity.fingerprint))
    compose(fresh, report, "--gateway-key", str(key_file), "--output", str(out))
    assert outcome(app, out.read_bytes(), worker) == ("accepted", None)
    assert gpg.keys_for_address(INTAKE)[0].fingerprint == app.identity.fingerprint


def test_compose_sends_over_smtp(
    app: App, team: TeamClient, worker: Worker, report: Path, smtp_server: Start
) -> None:
    port = smtp_server()

    result = compose(team, report, "--send", f"smtp://127.0.0.1:{port}")

    assert result.stdout == "" and f"sent to {INTAKE}" in result.stderr
    worker.run_once()
    with open_session(app.engine) as s:
        [message] = spool.list_messages(s)
    assert (message.channel, message.state, message.envelope_from) == (
        "smtp",
        "accepted",
        team.email,
    )


def test_compose_to_stdout_with_another_sender(team: TeamClient, report: Path) -> None:
    result = compose(team, report, "--from", "other@alpha.example", "--subject", "Oct")
    mail = email.message_from_bytes(result.stdout_bytes)
    assert mail["From"] == "other@alpha.example" and mail["Subject"] == "[...]"


def test_compose_refuses_a_report_the_gateway_would_reject(
    team: TeamClient, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(TYPE1.replace("Requests: 1204", "Requests: lots"))
    out = tmp_path / "message.eml"

    result = compose(team, bad, "--output", str(out), code=1)

    assert "line 3" in result.stderr and "--no-check" in result.stderr
    assert not out.exists()
    compose(team, bad, "--output", str(out), "--no-check")
    assert out.exists()


def test_compose_refuses_unusable_arguments(team: TeamClient, report: Path) -> None:
    unknown = compose(team, report, "--key-id", "AB" * 20, code=2)  # the last --key-id wins
    assert "no secret key" in unknown.stderr
    assert "user@domain" in compose(team, report, "--from", "Alpha <a@b.example>", code=2).stderr
    assert "smtp://" in compose(team, report, "--send", "http://example", code=2).stderr


def _filled(template: str, number: str) -> str:
    return re.sub(r"^([^#\n][^:\n]*): $", rf"\1: {number}", template, flags=re.M)


@pytest.mark.parametrize("kind", ["type1", "type2"])
def test_template_parses_once_the_numbers_are_filled_in(kind: str) -> None:
    template = run("template", kind, env={"CLEARINGHOUSE_CONFIG": "/nonexistent"}).stdout
    today = datetime.now(UTC).date()
    taxonomy = load_taxonomy()
    assert f"Period: {previous_period(today)}\n" in template

    blank = parse_text(template, "body", today, taxonomy)
    assert not blank.ok  # empty values are not numbers: a blank template is refused

    filled = parse_text(_filled(template, "2"), "body", today, taxonomy)
    assert filled.ok, filled.errors
    [parsed] = filled.reports
    if isinstance(parsed, Type1Report):
        assert set(parsed.values) == set(TYPE1_FIELDS)
    else:
        assert set(parsed.counts) == {target for target, _ in taxonomy.categories()}


def test_a_filled_template_goes_through_end_to_end(
    app: App, team: TeamClient, worker: Worker, tmp_path: Path
) -> None:
    template = run("template", "type2", "--period", "2026-10").stdout
    path = tmp_path / "type2.txt"
    path.write_text(_filled(template, "1"))
    out = tmp_path / "message.eml"
    compose(team, path, "--output", str(out))
    assert outcome(app, out.read_bytes(), worker) == ("accepted", None)
    assert run("template", "type3", code=2).exit_code == 2
    assert "YYYY-MM" in run("template", "type1", "--period", "Oct", code=2).stderr


def test_template_type2_in_either_vocabulary(tmp_path: Path) -> None:
    rsit = run("template", "type2", "--taxonomy", "rsit-1.3", "--period", "2026-10").stdout
    assert "\nTaxonomy: rsit-1.3\n" in rsit and "\nVulnerable / Weak Cryptography: \n" in rsit
    ecsirt = run("template", "type2", "--taxonomy", "ecsirt-v2").stdout
    assert "\nTaxonomy: ecsirt-v2\n" in ecsirt and "\nMalicious Code / Virus: \n" in ecsirt
    filled = parse_text(_filled(rsit, "1"), "body", datetime.now(UTC).date(), load_taxonomy())
    assert filled.ok, filled.errors
    assert "--taxonomy" in run("template", "type1", "--taxonomy", "rsit-1.3", code=2).stderr
    assert "rsit-1.3" in run("template", "type2", "--taxonomy", "rsit", code=2).stderr


def test_template_follows_the_gateway_configuration_only_when_given(tmp_path: Path) -> None:
    """With --config, the gateway's canonical vocabulary and extra file; from the
    environment (a gateway's left-over on a team's machine) nothing is read."""
    extra = tmp_path / "extra.toml"
    extra.write_text(
        '[[rsit_class]]\nslug = "vulnerable"\nname = "Vulnerable"\n'
        '  [[rsit_class.type]]\n  slug = "exposed-backup"\n  name = "Exposed Backup"\n'
        '  maps_to = "other"\n'
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[clearinghouse]\nhome = "{tmp_path / "var"}"\n'
        f'[taxonomy]\ncanonical = "rsit-1.3"\nextra_file = "{extra}"\n'
    )
    configured = run("--config", str(config), "template", "type2").stdout
    assert "\nTaxonomy: rsit-1.3\n" in configured
    assert "\nVulnerable / Exposed Backup: \n" in configured
    ignored = run("template", "type2", env={"CLEARINGHOUSE_CONFIG": str(config)}).stdout
    assert "\nTaxonomy: ecsirt-v2\n" in ignored and "Exposed Backup" not in ignored
    config.write_text('[taxonomy]\ncanonical = "rsit"\n')
    assert "canonical" in run("--config", str(config), "template", "type2", code=2).stderr
