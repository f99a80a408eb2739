"""The monthly run end to end (gateway/jobs/monthly.py, `report monthly`): real keys, real
sealed mail. Each queued mail is decrypted with its recipient's key to check who got
what; reruns queue nothing new, `--resend` queues everything again, `--no-send` only
writes the files.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlmodel import col
from statistics_data import at, pdf_text, row, store, team_id, type1, type2
from support import TeamClient, config_toml

from contract.codes import State
from gateway.app import App
from gateway.cli import cli
from gateway.jobs.monthly import run_monthly
from keys.gpg import GnuPG
from store.db import open_session, transaction
from store.models import Message, OutboxEntry
from store.monitoring import list_outbox
from store.spool import spool_message
from store.statistics import list_runs

PERIOD = "2026-10"
COORDINATOR = "coord@clearinghouse.example"
ALPHA = (1204, 311, 298, 1650, 1422, 187, "940.5")


def _ciphertext(raw: bytes) -> bytes:
    outer = email.message_from_bytes(raw, policy=email.policy.default)
    assert outer["Subject"] == "[...]"  # the real subject travels encrypted
    parts = outer.get_payload()
    assert isinstance(parts, list) and outer.get_content_type() == "multipart/encrypted"
    encrypted = parts[1]
    assert isinstance(encrypted, email.message.Message)
    data = encrypted.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def _open(gpg: GnuPG, raw: bytes) -> EmailMessage:
    """Decrypt a sealed mail; return its protected inner message (signature checked)."""
    result = gpg.decrypt(_ciphertext(raw))
    assert result.decrypted, result.problems
    assert [s.outcome for s in result.signatures] == ["good"]
    inner = email.message_from_bytes(result.data, policy=email.policy.default)
    assert isinstance(inner, EmailMessage)
    return inner


def attachments(message: EmailMessage) -> dict[str, bytes]:
    found = {}
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes) and part.get_content_type() == "application/pdf"
        found[str(part.get_filename())] = data
    return found


def body(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    return str(text.get_content())


@pytest.fixture
def month(app: App, make_team: Callable[..., TeamClient], tmp_path: Path) -> dict[str, TeamClient]:
    """alpha and bravo send both types, charlie type 1 only, delta nothing; a coordinator."""
    app.clock = lambda: datetime(2026, 11, 5, 6, 0, tzinfo=UTC)
    clients = {h: make_team(h) for h in ("alpha", "bravo", "charlie", "delta")}
    ids = {h: team_id(app.engine, h) for h in clients}
    store(app.engine, ids["alpha"], type1(PERIOD, *ALPHA))
    store(app.engine, ids["bravo"], type1(PERIOD, 10, 10, 10, 10, 10, 10, 10))
    store(app.engine, ids["bravo"], type1(PERIOD, 20, 2, 2, 2, 2, 2, 2))  # counts
    store(app.engine, ids["charlie"], type1(PERIOD, 3, 3, 3, 3, 3, 3, 3))
    store(app.engine, ids["alpha"], type2(PERIOD, {"abusive-content/spam": 120}))
    store(app.engine, ids["bravo"], type2(PERIOD, {"malicious-code/virus": 12}))
    coordinator_gpg = GnuPG(tmp_path / "coordinator")
    fpr = coordinator_gpg.generate_key("Coordinator", COORDINATOR)
    coordinator_gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    app.registry.add_coordinator(COORDINATOR, coordinator_gpg.export_public(fpr).encode(), "Cora")
    return clients


def monthly_entries(app: App) -> list[OutboxEntry]:
    with open_session(app.engine) as s:
        return [e for e in list_outbox(s) if e.kind == "monthly"]


def test_run_writes_files_and_mails_each_entitled_recipient(
    app: App, month: dict[str, TeamClient], tmp_path: Path
) -> None:
    lines: list[str] = []
    result = run_monthly(app, PERIOD, progress=lines.append)
    directory = app.config.reports.output_dir / PERIOD
    assert sorted(p.name for p in directory.iterdir()) == [
        "coordinator-summary.pdf",
        "internal-type1.pdf",
        "internal-type2.pdf",
        "public.csv",
        "public.pdf",
    ]
    assert any(line.startswith("wrote ") for line in lines)
    entries = {e.recipient: e for e in monthly_entries(app)}
    assert set(entries) == {
        "cert@alpha.example",
        "cert@bravo.example",
        "cert@charlie.example",
        COORDINATOR,
    }
    assert result.delivery is not None and result.delivery.queued == 4

    alpha = _open(month["alpha"].gpg, entries["cert@alpha.example"].raw)
    assert alpha["Subject"] == "Clearinghouse: statistics for October 2026"
    files = attachments(alpha)
    assert set(files) == {
        f"{PERIOD}-internal-type1.pdf",
        f"{PERIOD}-internal-type2.pdf",
        f"{PERIOD}-public.pdf",
    }
    own = result.statistics.type1.row_of(team_id(app.engine, "alpha"))
    assert own is not None and f"in {PERIOD}-internal-type1.pdf as {own.pseudonym}" in body(alpha)
    internal = pdf_text(files[f"{PERIOD}-internal-type1.pdf"])
    assert row(internal, f"{own.pseudonym} (your team)").endswith(
        "1,204 311 298 1,650 1,422 187 940.5"
    )
    assert internal.count("(your team)") == 1
    assert files[f"{PERIOD}-public.pdf"] == (directory / "public.pdf").read_bytes()
    # (1204 + 20 + 3) / 3 = 409.00: bravo's second revision counts.
    assert row(pdf_text(files[f"{PERIOD}-public.pdf"]), "Requests").startswith("Requests 409.00 3")

    charlie = attachments(_open(month["charlie"].gpg, entries["cert@charlie.example"].raw))
    assert set(charlie) == {f"{PERIOD}-internal-type1.pdf", f"{PERIOD}-public.pdf"}
    coordinator = _open(GnuPG(tmp_path / "coordinator"), entries[COORDINATOR].raw)
    sent = attachments(coordinator)
    assert set(sent) == {
        f"{PERIOD}-coordinator-summary.pdf",
        f"{PERIOD}-internal-type1.pdf",
        f"{PERIOD}-internal-type2.pdf",
        f"{PERIOD}-public.pdf",
    }
    assert "(your team)" not in pdf_text(sent[f"{PERIOD}-internal-type1.pdf"])
    summary = pdf_text(sent[f"{PERIOD}-coordinator-summary.pdf"])
    assert row(summary, "delta") == "delta CERT DELTA accredited missing missing"
    assert "Dear Cora" in body(coordinator)
    # A mail is readable by its recipient only.
    assert not month["bravo"].gpg.decrypt(_ciphertext(entries["cert@alpha.example"].raw)).decrypted


def test_rerun_queues_nothing_resend_queues_all_again(
    app: App, month: dict[str, TeamClient]
) -> None:
    first = run_monthly(app, PERIOD)
    again = run_monthly(app, PERIOD)
    assert again.files == first.files and again.digest == first.digest  # byte-identical
    assert again.delivery is not None and (again.delivery.queued, again.delivery.already) == (0, 4)
    assert len(monthly_entries(app)) == 4

    resent = run_monthly(app, PERIOD, resend=True)
    assert resent.delivery is not None and resent.delivery.generation == 1
    keys = sorted(e.dedupe_key for e in monthly_entries(app))
    assert len(keys) == 8 and sum(k.endswith(":resend-1") for k in keys) == 4
    assert "monthly:2026-10:team:alpha:resend-1" in keys
    run_monthly(app, PERIOD)  # a plain rerun after a resend: still nothing new
    assert len(monthly_entries(app)) == 8
    with open_session(app.engine) as s:
        runs = list_runs(s, PERIOD)
    assert [(r.generation, r.queued) for r in runs] == [(0, 4), (0, 0), (1, 4), (1, 0)]
    assert len({r.digest for r in runs}) == 1


def test_late_first_report_is_mailed_on_rerun_without_mailing_others_again(
    app: App, month: dict[str, TeamClient]
) -> None:
    run_monthly(app, PERIOD)
    store(app.engine, team_id(app.engine, "delta"), type1(PERIOD, 5, 5, 5, 5, 5, 5, 5))
    rerun = run_monthly(app, PERIOD)
    assert rerun.delivery is not None and rerun.delivery.queued == 1
    assert [e.recipient for e in monthly_entries(app)][-1] == "cert@delta.example"
    assert rerun.statistics.type1.teams == 4


def test_no_send_writes_files_only_and_suspended_teams_get_nothing(
    app: App, month: dict[str, TeamClient]
) -> None:
    result = run_monthly(app, PERIOD, send=False)
    assert result.delivery is None and monthly_entries(app) == []
    assert (app.config.reports.output_dir / PERIOD / "public.pdf").exists()
    app.registry.set_status("charlie", "suspended")
    run_monthly(app, PERIOD)
    recipients = {e.recipient for e in monthly_entries(app)}
    assert "cert@charlie.example" not in recipients and "cert@delta.example" not in recipients


def test_cli_report_monthly(app: App, month: dict[str, TeamClient], tmp_path: Path) -> None:
    config = tmp_path / "clearinghouse.toml"
    config.write_text(config_toml(app.config))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(config), "report", "monthly", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result.exit_code, result.output

    code, output = run("--period", PERIOD, "--no-send")
    assert code == 0 and "wrote " in output and "no mail queued" in output
    assert monthly_entries(app) == []
    code, output = run("--period", PERIOD)
    assert code == 0 and "queued 4 mails" in output
    code, output = run("--period", PERIOD)
    assert code == 0 and "queued 0 mails" in output and "not again" in output
    assert run("--period", "2999-01")[0] == 2  # not over yet
    assert run("--period", "2026-13")[0] == 2
    assert run("--no-send", "--resend")[0] == 2
    # A team whose only key is revoked cannot be mailed: named, and the run fails.
    app.registry.revoke_key(month["bravo"].fingerprint, "lost")
    code, output = run("--period", PERIOD, "--resend")
    assert code == 1 and "cert@bravo.example" in output


def test_the_summary_counts_the_messages_of_the_months_submission_round(
    app: App, month: dict[str, TeamClient]
) -> None:
    # October's reports arrive in October and early November (before the report day,
    # the 5th); a message of 6 November is the next round's, one of 4 October the last's.
    when = {
        "2026-10-04 12:00": State.QUARANTINED,
        "2026-10-20 12:00": State.ACCEPTED,
        "2026-11-02 09:00": State.ACCEPTED,
        "2026-11-04 23:59": State.REJECTED,
        "2026-11-06 08:00": State.ACCEPTED,
    }
    ids = [
        spool_message(app.engine, b"Subject: %d\r\n\r\nx\r\n" % n, "smtp")[0]
        for n in range(len(when))
    ]
    with transaction(app.engine) as s:
        # the fixture's messages arrived "now": put them in a round long gone
        s.exec(update(Message).values(received_at=at("2026-01-01")))
        for message_id, (day, state) in zip(ids, when.items(), strict=True):
            s.exec(
                update(Message)
                .where(col(Message.id) == message_id)
                .values(received_at=at(day), state=state, reason=None)
            )
    summary = run_monthly(app, PERIOD, send=False).summary
    assert dict(summary.states) == {"accepted": 2, "rejected": 1}
    assert summary.round == "5 October to 4 November 2026"
    text = " ".join(
        pdf_text(
            (app.config.reports.output_dir / PERIOD / "coordinator-summary.pdf").read_bytes()
        ).split()
    )
    assert "3 in the submission round, 5 October to 4 November 2026" in text
