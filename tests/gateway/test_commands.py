"""Team commands by email: `Command: template type1|type2` and `Command: status YYYY-MM`.

The answers are sealed to the authenticated team only; an unknown command gets a clear
error reply; a command from an unauthenticated sender gets nothing.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from pipeline_support import outbox_entries, process, stored
from support import TYPE1, TYPE2, TeamClient

from gateway.app import App
from parsers.model import Type2Report
from parsers.text import parse_text


def answer(team: TeamClient, raw: bytes) -> tuple[str, str]:
    """(protected subject, body) of a reply, decrypted and verified with the team's key."""
    result = team.decrypt(raw)
    assert result.clean and len(result.signatures) == 1
    inner = email.message_from_bytes(result.data)
    body = inner.get_payload(decode=True)
    assert isinstance(body, bytes)
    return str(inner["Subject"]), body.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("report_type", ["type1", "type2"])
def test_template_command_returns_a_blank_report_the_parser_accepts_once_filled(
    app: App, team: TeamClient, report_type: str
) -> None:
    assert process(app, team.submit(f"Command: template {report_type}\n")) == ("accepted", None)
    assert stored(app) == []
    [(kind, recipient, raw)] = outbox_entries(app)
    assert (kind, recipient) == ("command", team.email)
    subject, body = answer(team, raw)
    assert subject == f"Template: {report_type}"
    report = body[body.index("# Type") : body.index("\n--\n")]
    filled = report.replace("YYYY-MM", "2026-10").replace(": \n", ": 3\n")
    outcome = parse_text(filled, "body", date(2026, 11, 23), app.taxonomy)
    assert outcome.ok and outcome.reports[0].type == report_type


def test_status_command_lists_every_revision_for_the_period(app: App, team: TeamClient) -> None:
    process(app, team.submit(TYPE1 + "\n" + TYPE2))
    process(app, team.submit(TYPE1.replace("Requests: 1204", "Requests: 1300")))
    assert process(app, team.submit("Command: status 2026-10\n")) == ("accepted", None)
    assert len(stored(app)) == 3  # the command stored nothing
    subject, body = answer(team, outbox_entries(app)[-1][2])
    assert subject == "Status: 2026-10"
    assert body.count("== type1 2026-10") == 2 and body.count("== type2 2026-10") == 1
    assert "revision 2" in body and "1300" in body and "1204" in body
    assert "Abusive Content / Spam:" in body


def test_status_of_an_empty_period_says_so(app: App, team: TeamClient) -> None:
    process(app, team.submit("Command: status 2025-01\n"))
    _, body = answer(team, outbox_entries(app)[0][2])
    assert "Nothing has been stored for 2025-01" in body


def test_status_never_shows_another_teams_figures(
    app: App, team: TeamClient, make_team: Callable[..., TeamClient]
) -> None:
    other = make_team("bravo")
    process(app, other.submit(TYPE1.replace("Requests: 1204", "Requests: 777777")))
    process(app, team.submit("Command: status 2026-10\n"))
    _, body = answer(team, outbox_entries(app)[-1][2])
    assert "777777" not in body and "Nothing has been stored" in body


@pytest.mark.parametrize(
    "line",
    [
        "Command: delete everything",
        "Command: status 2026-13",
        "Command: template type3",
        "Command:",
    ],
)
def test_unknown_commands_get_a_clear_error_reply(app: App, team: TeamClient, line: str) -> None:
    assert process(app, team.submit(line + "\n")) == ("rejected", "unknown-command")
    [(kind, recipient, raw)] = outbox_entries(app)
    assert (kind, recipient) == ("command-error", team.email)
    _, body = answer(team, raw)
    assert "Command: status YYYY-MM" in body and "Nothing was stored" in body


def test_commands_from_unauthenticated_senders_get_nothing(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    impostor = team.with_new_key(tmp_path / "stranger", "Stranger")
    assert process(app, impostor.submit("Command: status 2026-10\n")) == (
        "quarantined",
        "unknown-key",
    )
    assert outbox_entries(app) == []


def test_a_replayed_command_is_a_duplicate(app: App, team: TeamClient) -> None:
    raw = team.submit("Command: template type1\n")
    assert process(app, raw) == ("accepted", None)
    assert process(app, raw) == ("duplicate", None)


@pytest.mark.parametrize(
    ("line", "taxonomy", "a_line"),
    [
        ("Command: template type2 rsit-1.3", "rsit-1.3", "Malicious Code / Infected System: "),
        ("Command: template type2 ecsirt-v2", "ecsirt-v2", "Malicious Code / Virus: "),
        ("Command: template type2", "ecsirt-v2", "Malicious Code / Virus: "),
    ],
)
def test_template_command_offers_either_vocabulary(
    app: App, team: TeamClient, line: str, taxonomy: str, a_line: str
) -> None:
    assert process(app, team.submit(line + "\n")) == ("accepted", None)
    _, body = answer(team, outbox_entries(app)[0][2])
    assert f"\nTaxonomy: {taxonomy}\n" in body and f"\n{a_line}\n" in body
    assert "Command: template type2 rsit-1.3" in body  # says how to get the other one
    report = body[body.index("# Type") : body.index("\n--\n")]
    filled = report.replace("YYYY-MM", "2026-10").replace(": \n", ": 1\n")
    [parsed] = parse_text(filled, "body", date(2026, 11, 23), app.taxonomy).reports
    assert isinstance(parsed, Type2Report)
    assert {line.sent.vocabulary for line in parsed.lines} == {taxonomy}


def test_status_shows_each_count_as_sent_and_what_it_counts_as(app: App, team: TeamClient) -> None:
    rsit = (
        "Report: type2\nPeriod: 2026-10\nTaxonomy: rsit-1.3\n"
        "fraud/phishing: 7\nabusive-content/spam: 2\n"
    )
    process(app, team.submit(rsit))
    process(app, team.submit("Command: status 2026-10\n"))
    _, body = answer(team, outbox_entries(app)[-1][2])
    lines = body.splitlines()
    at = lines.index(next(x for x in lines if x.strip().startswith("Fraud / Phishing")))
    assert lines[at].split() == ["Fraud", "/", "Phishing", "(RSIT", "1.3):", "7"]
    assert lines[at + 1].strip() == "counts as Fraud / Masquerade (eCSIRT.net v2)"
    # Spam is Spam in both: the count is shown as sent, with what it counts as.
    assert "Abusive Content / Spam (RSIT 1.3):" in body
    assert "counts as Abusive Content / Spam (eCSIRT.net v2)" in body
