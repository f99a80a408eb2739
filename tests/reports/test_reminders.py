"""Reminders before the report day and key-expiry warnings: who gets one, and only once."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from pipeline_support import outbox_entries, process
from support import TYPE1, TeamClient

from gateway.app import App
from gateway.cli import cli
from gateway.jobs.reminders import send_reminders

NOVEMBER = TYPE1.replace("2026-10", "2026-11")  # "last month" as seen in early December


def subjects(team: TeamClient, app: App, kind: str) -> list[str]:
    found = []
    for entry_kind, recipient, raw in outbox_entries(app):
        if entry_kind == kind and recipient == team.email:
            inner = email.message_from_bytes(team.decrypt(raw).data)
            found.append(str(inner["Subject"]))
    return found


@pytest.fixture
def teams(make_team: Callable[..., TeamClient], app: App) -> dict[str, TeamClient]:
    made = {h: make_team(h) for h in ("alpha", "bravo")}
    made["lima"] = make_team("lima", status="listed")  # may not submit: never reminded
    assert process(app, made["alpha"].submit(NOVEMBER)) == ("accepted", None)
    return made


def test_teams_without_a_report_are_reminded_once_in_the_days_before(
    app: App, teams: dict[str, TeamClient]
) -> None:
    # day_of_month 5, reminder_days_before 3: reminders on December 2, 3 and 4.
    assert send_reminders(app, date(2026, 12, 1)).reminders == []
    first = send_reminders(app, date(2026, 12, 2))
    assert (first.period, first.reminders) == ("2026-11", ["bravo"])
    assert send_reminders(app, date(2026, 12, 3)).reminders == []
    assert send_reminders(app, date(2026, 12, 4)).reminders == []
    assert send_reminders(app, date(2026, 12, 5)).reminders == []
    assert subjects(teams["bravo"], app, "reminder") == ["Reminder: statistics for November 2026"]
    assert subjects(teams["alpha"], app, "reminder") == []
    assert [r for k, r, _ in outbox_entries(app) if k == "reminder"] == [teams["bravo"].email]


def test_the_reminder_names_the_period_and_the_report_day(
    app: App, teams: dict[str, TeamClient]
) -> None:
    send_reminders(app, date(2026, 12, 3))
    [raw] = [raw for kind, _, raw in outbox_entries(app) if kind == "reminder"]
    body = email.message_from_bytes(teams["bravo"].decrypt(raw).data).get_payload(decode=True)
    assert isinstance(body, bytes)
    text = " ".join(body.decode().split())
    assert "for November 2026 (2026-11)" in text and "computed on 2026-12-05" in text


def test_no_reminders_when_disabled(
    app_with: Callable[..., App], teams: dict[str, TeamClient]
) -> None:
    disabled = app_with(reports={"reminder_days_before": 0})
    assert send_reminders(disabled, date(2026, 12, 3)).reminders == []


def test_a_key_expiring_soon_is_warned_about_once(
    app: App, make_team: Callable[..., TeamClient]
) -> None:
    soon, later = make_team("soon", expire="10d"), make_team("later", expire="60d")
    today = app.clock().date()
    assert send_reminders(app, today).warnings == [soon.fingerprint]
    assert send_reminders(app, today).warnings == []
    [subject] = subjects(soon, app, "key-expiry")
    assert subject.startswith("Your key expires on ")
    assert subjects(later, app, "key-expiry") == []


def test_a_revoked_expiring_key_is_not_warned_about(
    app: App, make_team: Callable[..., TeamClient]
) -> None:
    soon = make_team("soon", expire="10d")
    app.registry.revoke_key(soon.fingerprint, "replaced")
    assert send_reminders(app, app.clock().date()).warnings == []


def test_cli_report_reminders(app: App, teams: dict[str, TeamClient], tmp_path: Path) -> None:
    config = tmp_path / "clearinghouse.toml"
    core = app.config.clearinghouse
    config.write_text(
        f'[clearinghouse]\nhome = "{core.home}"\ndatabase_url = "{core.database_url}"\n'
    )
    run = CliRunner().invoke(
        cli, ["--config", str(config), "report", "reminders", "--date", "2026-12-03"]
    )
    assert run.exit_code == 0, run.output
    assert "2026-11: 1 reminder(s) bravo" in run.output
