"""Storage: raw mail past `[retention]` is purged (its record stays), and one client
address stores at most `[smtp] max_bytes_per_client_per_hour`, answered 452 beyond.

Purging through the CLI (`messages purge [--dry-run]`), on messages that really went
through the pipeline and were then dated back; quotas through real SMTP from two
loopback addresses.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from pathlib import Path

from cli_support import Cli
from databases import backend
from pipeline_support import process, process_all
from smtp_support import HOST, Start, spooled
from sqlalchemy import update
from support import INTAKE, TYPE1, TeamClient, config_toml

from gateway.app import App
from gateway.spool import accept
from store.db import transaction
from store.models import Message, utcnow

INVALID = TYPE1.replace("Requests: 1204", "Requests: -5")


def junk(size: int, tag: int = 0) -> bytes:
    """An unencrypted message of exactly `size` bytes, in lines of 80 with their CRLF."""
    head = f"From: x{tag}@junk.example\r\nTo: {INTAKE}\r\nSubject: junk\r\n\r\n".encode()
    lines, rest = divmod(size - len(head), 80)
    last = b"k" * (rest - 2) + b"\r\n" if rest >= 2 else b""
    message = head + (b"j" * 78 + b"\r\n") * lines + last
    assert len(message) == size
    return message


def cli(app: App, tmp_path: Path, extra: str = "") -> Cli:
    path = tmp_path / f"ch{len(extra)}.toml"
    path.write_text(config_toml(app.config) + extra)
    return Cli(path)


def age(app: App, ids: list[int], days: int) -> None:
    """Date messages back, as if they had arrived `days` days ago."""
    with transaction(app.engine) as s:
        s.exec(
            update(Message)
            .where(Message.id.in_(ids))  # type: ignore[union-attr]
            .values(received_at=utcnow() - timedelta(days=days))
        )


def ids_by_state(ch: Cli) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for m in ch.json("messages", "list"):
        found.setdefault(m["state"], []).append(m["id"])
    return found


def test_purge_deletes_raw_mail_past_retention_and_keeps_the_record(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    ch = cli(app, tmp_path)
    process(app, team.submit(TYPE1))  # accepted
    process(app, team.submit(INVALID))  # rejected
    process(app, junk(5000))  # quarantined: not encrypted
    recent = accept(app.engine, junk(5000, 1), "ingest")[0]
    process(app, b"")  # and one more quarantined, which stays recent
    by_state = ids_by_state(ch)
    old = by_state["accepted"] + by_state["rejected"] + by_state["quarantined"][:1]
    age(app, old, days=91)
    before = {m["id"]: m for m in ch.json("messages", "list")}
    shown_before = ch.json("messages", "show", str(by_state["rejected"][0]))

    dry = ch.json("messages", "purge", "--dry-run")
    due = sorted(m["id"] for m in dry["messages"])
    assert due == sorted(by_state["rejected"] + by_state["quarantined"][:1])  # accepted kept
    assert dry["purged"] == 0 and len(ch("messages", "show", str(due[0]), "--raw").stdout) > 0

    result = ch("messages", "purge")
    assert "purged the raw bytes of 2 message(s)" in result.stdout
    for message_id in due:
        shown = ch.json("messages", "show", str(message_id))
        assert shown["purged_at"] is not None
        failed = ch("messages", "show", str(message_id), "--raw", code=1)
        assert "purged" in failed.stderr and "record remains" in failed.stderr
        assert "purged" in ch("messages", "reprocess", str(message_id), code=1).stderr
    kept = ch.json("messages", "show", str(by_state["rejected"][0]))
    for key in ("state", "reason", "team", "size", "received_at", "envelope_from", "detail"):
        assert kept[key] == shown_before[key]
    assert {m["id"]: m for m in ch.json("messages", "list")} == before
    assert ch.json("messages", "purge")["messages"] == []  # nothing new is due
    assert recent not in due

    longer = cli(app, tmp_path, "[retention]\naccepted_raw_days = 30\n")
    assert [m["id"] for m in longer.json("messages", "purge")["messages"]] == by_state["accepted"]


def test_purged_space_is_reused_so_junk_stops_growing_the_data_directory(
    app: App, tmp_path: Path
) -> None:
    ch = cli(app, tmp_path, "[retention]\nrefused_raw_days = 1\n")
    outcomes = process_all(app, [junk(1_000_000, i) for i in range(12)])
    assert set(outcomes) == {("quarantined", "not-encrypted")}
    age(app, [m["id"] for m in ch.json("messages", "list")], days=2)
    assert len(ch.json("messages", "purge")["messages"]) == 12
    database = app.config.clearinghouse.home / "clearinghouse.db"
    size = database.stat().st_size if backend() == "sqlite" else 0
    process_all(app, [junk(1_000_000, 100 + i) for i in range(12)])
    if backend() == "sqlite":  # PostgreSQL reuses the space too, but not in one file
        assert database.stat().st_size < size + 2_000_000, "purged pages were not reused"


def test_a_client_over_its_hourly_quota_gets_452_and_another_does_not(
    app: App, smtp_server: Start
) -> None:
    port = smtp_server(max_bytes_per_client_per_hour=70_000)
    message = junk(30_000)

    def session(source: str) -> smtplib.SMTP:
        smtp = smtplib.SMTP(HOST, port, timeout=30, source_address=(source, 0))
        smtp.ehlo("client.example")
        return smtp

    smtp = session("127.0.0.2")
    for _ in range(2):  # 60,000 bytes: within the quota
        assert smtp.sendmail("a@junk.example", [INTAKE], message) == {}
    assert smtp.mail("a@junk.example")[0] == 250  # 10,000 bytes left: MAIL is taken,
    smtp.rcpt(INTAKE)
    code, reply = smtp.data(message)  # but 30,000 more would pass the quota
    assert (code, reply[:5]) == (452, b"4.3.1")
    assert smtp.sendmail("a@junk.example", [INTAKE], junk(10_000)) == {}  # 70,000: full
    code, reply = smtp.mail("a@junk.example")
    assert code == 452 and b"quota" in reply  # used up: refused before any DATA
    smtp.close()
    other = session("127.0.0.3")
    assert other.sendmail("b@junk.example", [INTAKE], message) == {}
    other.quit()
    assert len(spooled(app)) == 4  # nothing refused was stored


def test_many_small_messages_meet_the_message_quota(app: App, smtp_server: Start) -> None:
    """Every encrypted message costs a gpg run however small: messages are counted too."""
    port = smtp_server(max_messages_per_client_per_hour=5)
    smtp = smtplib.SMTP(HOST, port, timeout=30, source_address=("127.0.0.2", 0))
    smtp.ehlo("client.example")
    for _ in range(5):
        assert smtp.sendmail("a@junk.example", [INTAKE], junk(500)) == {}
    code, reply = smtp.mail("a@junk.example")
    assert code == 452 and b"quota" in reply
    smtp.close()
    assert len(spooled(app)) == 5


def test_a_relay_for_many_senders_has_no_hourly_quota(app: App, smtp_server: Start) -> None:
    port = smtp_server(max_messages_per_client_per_hour=2, relays=("127.0.0.2",))
    relay = smtplib.SMTP(HOST, port, timeout=30, source_address=("127.0.0.2", 0))
    relay.ehlo("mta.example")
    for n in range(4):
        assert relay.sendmail(f"t{n}@teams.example", [INTAKE], junk(500)) == {}
    relay.quit()
    direct = smtplib.SMTP(HOST, port, timeout=30, source_address=("127.0.0.3", 0))
    direct.ehlo("client.example")
    for _ in range(2):
        assert direct.sendmail("a@junk.example", [INTAKE], junk(500)) == {}
    assert direct.mail("a@junk.example")[0] == 452
    direct.close()
    assert len(spooled(app)) == 6
