"""Reply amplification: what anyone can make the gateway mail to a team is bounded.

The attack of issue 18: a team's clearsigned text (published anywhere, under 30 days
old) rebuilt as `multipart/signed` and encrypted, unsigned, to the gateway is that
team's signed content: it got a signed rejection mailed to the team, again for every
copy; a replayed ciphertext got one duplicate notice per replay; and the coordinator
summary counted it all as the team's own rejections. Now an identical content is
answered once, rejections and notices to a team are limited per hour, and the summary
lists replays apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_support import Cli
from hostile import envelope, gpg
from pipeline_support import outbox_entries, process, process_all
from sqlalchemy import update
from statistics_data import pdf_text
from support import TYPE1, TeamClient, config_toml, with_changes

from gateway.app import App
from gateway.jobs.monthly import run_monthly
from reports.periods import previous_period
from store.db import transaction
from store.models import Message

STATEMENT = "Dear colleagues,\nour annual report is out.\nCERT Alpha"


def clearsigned(team: TeamClient, text: str) -> bytes:
    """The team's own clearsigned text, as it might be published."""
    return gpg(team.gpg.home, "--local-user", team.fingerprint, "--clearsign", data=text.encode())


def as_multipart_signed(clearsigned_text: bytes) -> bytes:
    """The attacker's rebuild: the clear text as the signed part, its signature beside."""
    text = clearsigned_text.decode()
    body = text.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    body = re.sub(r"(?m)^- ", "", body).replace("\n", "\r\n")
    signature = text[text.index("-----BEGIN PGP SIGNATURE-----") :].replace("\n", "\r\n")
    return (
        'Content-Type: multipart/signed; protocol="application/pgp-signature";'
        ' micalg=pgp-sha512; boundary="sig"\r\n\r\n--sig\r\n'
        f"{body}\r\n--sig\r\nContent-Type: application/pgp-signature\r\n\r\n"
        f"{signature}\r\n--sig--\r\n"
    ).encode()


def encrypted_by_stranger(stranger: TeamClient, victim: TeamClient, entity: bytes) -> bytes:
    """Encrypted to the gateway by someone else, unsigned, From the victim's address."""
    armored = gpg(
        stranger.gpg.home,
        "--armor",
        "--recipient",
        stranger.gateway_fingerprint,
        "--encrypt",
        data=entity,
    )
    return envelope(victim, armored, sender=victim.email)


def sent_kinds(app: App) -> list[str]:
    return [kind for kind, _, _ in outbox_entries(app)]


def cli(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "ch.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


def test_copies_of_a_rebuilt_clearsigned_text_are_answered_once(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    mallory = team.with_new_key(tmp_path / "mallory", "Mallory", "mallory@evil.example")
    entity = as_multipart_signed(clearsigned(team, STATEMENT))
    copies = [encrypted_by_stranger(mallory, team, entity) for _ in range(4)]
    assert len(set(copies)) == 4  # four different ciphertexts of one signed content
    outcomes = process_all(app, copies)
    assert outcomes == [("rejected", "parse-error")] * 4  # recorded under the team's key
    assert sent_kinds(app) == ["rejection"]  # one answer, not four
    ch = cli(app, tmp_path)
    details = [ch.json("messages", "show", str(i))["detail"] for i in (2, 3, 4)]
    assert all("answered for message 1" in d for d in details), details


def test_a_replayed_ciphertext_gets_one_duplicate_notice(app: App, team: TeamClient) -> None:
    raw = team.submit(TYPE1)
    assert process(app, raw) == ("accepted", None)
    assert process_all(app, [raw] * 3) == [("duplicate", None)] * 3
    assert sent_kinds(app) == ["receipt", "duplicate"]


def test_rejections_to_one_team_are_limited_per_hour(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    limited = App(with_changes(app.config, policy={"max_notices_per_team_per_hour": 3}))
    try:
        invalid = [TYPE1.replace("Requests: 1204", f"Requests: -{n}") for n in range(1, 6)]
        outcomes = process_all(limited, [team.submit(report) for report in invalid])
        assert outcomes == [("rejected", "invalid-report")] * 5
        assert sent_kinds(limited) == ["rejection"] * 3
        ch = cli(limited, tmp_path)
        assert [e["kind"] for e in ch.json("outbox", "list")] == ["rejection"] * 3
        withheld = ch.json("messages", "show", "5")["detail"]
        assert "max_notices_per_team_per_hour" in withheld
        # A stored report is always confirmed: receipts are not limited.
        assert process(limited, team.submit(TYPE1)) == ("accepted", None)
        assert sent_kinds(limited)[-1] == "receipt"
    finally:
        limited.engine.dispose()


def test_the_summary_lists_replays_apart_from_the_teams_own_rejections(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    mallory = team.with_new_key(tmp_path / "mallory", "Mallory", "mallory@evil.example")
    fresh = as_multipart_signed(clearsigned(team, STATEMENT))
    old = as_multipart_signed(clearsigned(team, STATEMENT + "\nP.S."))
    raws = [encrypted_by_stranger(mallory, team, fresh) for _ in range(3)]
    raws += [encrypted_by_stranger(mallory, team, old)]
    raws += [team.submit(TYPE1.replace("Requests: 1204", "Requests: -1"))]  # its own
    assert process_all(app, raws) == [("rejected", "parse-error")] * 4 + [
        ("rejected", "invalid-report")
    ]
    period = previous_period(datetime.now(UTC).date())
    last_month = datetime.strptime(period + "-15", "%Y-%m-%d").replace(tzinfo=UTC)
    with transaction(app.engine) as s:  # as if it all came last month, signed just before
        s.exec(update(Message).values(received_at=last_month))
        s.exec(update(Message).values(signed_at=last_month - timedelta(minutes=5)))
        # ... but message 4 was signed three days before anyone sent it.
        old_one = update(Message).where(Message.id == 4)  # type: ignore[arg-type]
        s.exec(old_one.values(signed_at=last_month - timedelta(days=3)))

    result = run_monthly(app, period, send=False)
    summary = result.summary
    assert summary.rejected == (("invalid-report", "alpha", 1), ("parse-error", "alpha", 1))
    assert [(r.team, r.state, r.reason, r.count) for r in summary.replayed] == [
        ("alpha", "rejected", "parse-error", 3)  # two copies, and the old signature
    ]
    text = pdf_text((result.directory / "coordinator-summary.pdf").read_bytes())
    assert "Replays: not counted against the team" in text
