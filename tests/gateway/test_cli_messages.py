"""The command line, part 2: the doors and the engine, and what an admin sees of messages.

`ingest` (its exit status is what an MTA acts on) and `serve` run as real subprocesses;
the rest in-process with click's CliRunner against a TOML file that points at the `app`
fixture's data directory. Submissions are really signed and encrypted (support.py).
"""

from __future__ import annotations

import email
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, write_config
from click.testing import CliRunner
from support import INTAKE, TYPE1, TYPE2, TeamClient, config_toml
from waiting import wait_until

from gateway.app import App
from gateway.cli import cli
from gateway.pipeline import process_message
from reports.periods import period_of, shift
from store import spool
from store.db import open_session

ROOT = Path(__file__).resolve().parents[2]
MESSAGE_FIELDS = {"id", "state", "reason", "team", "received_at", "channel"}
PLAIN = (f"From: cert@alpha.example\r\nTo: {INTAKE}\r\nSubject: stats\r\n\r\n{TYPE1}").encode()
INVALID = TYPE1.replace("Requests: 1204", "Requests: -5")


def clearinghouse(
    config: Path, *args: str, input: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The real command in a child process, as an MTA or an init system runs it."""
    return subprocess.run(
        [*command(config), *args],
        input=input,
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=False,
    )


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "--config", str(config)]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLEARINGHOUSE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture
def config_file(app: App, tmp_path: Path) -> Path:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return path


@pytest.fixture
def ch(config_file: Path) -> Cli:
    """The CLI pointed at the `app` fixture's data directory (same database and keyring)."""
    return Cli(config_file)


def states(ch: Cli) -> list[tuple[int, str, str | None]]:
    return [(m["id"], m["state"], m["reason"]) for m in ch.json("messages", "list")]


def maildir_files(app: App) -> list[Path]:
    new = app.config.outbound.maildir / "new"
    return sorted(new.iterdir()) if new.exists() else []


# --- ingest -----------------------------------------------------------------------------


def test_ingest_exits_0_once_the_message_is_stored(
    app: App, config_file: Path, ch: Cli, team: TeamClient, tmp_path: Path
) -> None:
    first, second = team.submit(TYPE1), team.submit(TYPE2)
    (tmp_path / "first.eml").write_bytes(first)
    done = clearinghouse(config_file, "ingest", str(tmp_path / "first.eml"))
    assert (done.returncode, done.stdout) == (0, b"stored as message 1\n"), done.stderr
    done = clearinghouse(config_file, "ingest", "-", input=second)
    assert (done.returncode, done.stdout) == (0, b"stored as message 2\n"), done.stderr

    with open_session(app.engine) as s:
        for message_id, raw in ((1, first), (2, second)):
            stored = spool.get_message(s, message_id)
            assert stored is not None and stored.raw == raw
            assert (stored.state, stored.channel) == ("received", "ingest")
    assert states(ch) == [(1, "received", None), (2, "received", None)]
    assert ch("ingest", input=PLAIN).stdout == "stored as message 3\n"  # stdin by default


def test_ingest_of_empty_input_exits_75_and_stores_nothing(config_file: Path, ch: Cli) -> None:
    done = clearinghouse(config_file, "ingest", input=b"")
    assert done.returncode == 75 and done.stdout == b""
    assert b"empty" in done.stderr
    assert ch.json("messages", "list") == []


@pytest.mark.parametrize(
    "case", ["database-under-a-file", "database-without-schema", "broken-configuration"]
)
def test_ingest_exits_75_when_it_cannot_store(tmp_path: Path, case: str) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory\n")
    extra = {
        "database-under-a-file": f'database_url = "sqlite:///{tmp_path}/blocker/ch.db"\n',
        "database-without-schema": f'database_url = "sqlite:///{tmp_path}/nowhere/ch.db"\n',
        "broken-configuration": 'databse_url = "sqlite:///ch.db"\n',
    }[case]
    config = write_config(tmp_path / "ch.toml", tmp_path / "var", extra)
    done = clearinghouse(config, "ingest", input=PLAIN)
    assert done.returncode == 75, done.stderr
    assert done.stdout == b"" and done.stderr.startswith(b"error: ")
    assert b"Traceback" not in done.stderr


# --- process and messages ---------------------------------------------------------------


def test_process_once_then_messages_list(app: App, ch: Cli, team: TeamClient) -> None:
    ch("ingest", input=team.submit(TYPE1))
    ch("ingest", input=PLAIN)
    ch("ingest", input=team.submit(INVALID))
    assert states(ch) == [(1, "received", None), (2, "received", None), (3, "received", None)]

    out = ch("process", "--once").stdout
    assert out == (
        "processed: 1 accepted, 1 quarantined, 1 rejected; outbox: 2 sent, 0 retrying, 0 failed\n"
    )
    listed = ch.json("messages", "list")
    assert all(set(m) == MESSAGE_FIELDS for m in listed)
    assert [(m["id"], m["state"], m["reason"], m["team"], m["channel"]) for m in listed] == [
        (1, "accepted", None, "alpha", "ingest"),
        (2, "quarantined", "not-encrypted", None, "ingest"),
        (3, "rejected", "invalid-report", "alpha", "ingest"),
    ]
    assert all(datetime.fromisoformat(m["received_at"]).tzinfo for m in listed)
    assert [m["id"] for m in ch.json("messages", "list", "--state", "quarantined")] == [2]
    assert ch.json("messages", "list", "--state", "duplicate") == []

    header, *rows = ch("messages", "list").stdout.splitlines()
    assert header.split() == ["ID", "STATE", "REASON", "TEAM", "CHANNEL", "RECEIVED_AT"]
    assert rows[1].split()[:4] == ["2", "quarantined", "not-encrypted", "ingest"]
    assert ch("messages", "list", "--state", "received").stdout == "(none)\n"
    assert ch("process", "--once").stdout.startswith("processed: nothing;")
    assert len(maildir_files(app)) == 2  # the receipt and the error reply


def test_messages_show_explains_the_reason_and_the_next_step(ch: Cli, team: TeamClient) -> None:
    raw = team.submit(TYPE1 + "\n" + TYPE2)
    ch("ingest", input=raw)
    ch("ingest", input=PLAIN)
    ch("process", "--once")

    accepted = ch.json("messages", "show", "1")
    assert {k: accepted[k] for k in MESSAGE_FIELDS} | {"received_at": None} == {
        "id": 1,
        "state": "accepted",
        "reason": None,
        "team": "alpha",
        "channel": "ingest",
        "received_at": None,
    }
    assert accepted["submissions"] == [1, 2]
    assert accepted["signer_fingerprint"] == team.fingerprint
    assert accepted["explanation"] is None and accepted["next_step"] is None

    quarantined = ch.json("messages", "show", "2")
    assert (quarantined["state"], quarantined["reason"]) == ("quarantined", "not-encrypted")
    assert "not encrypted" in quarantined["explanation"]
    assert "clearinghouse gateway-key" in quarantined["next_step"]
    assert quarantined["submissions"] == []
    text = ch("messages", "show", "2").stdout
    assert "not-encrypted" in text and quarantined["explanation"] in text
    assert quarantined["next_step"] in text

    result = CliRunner().invoke(cli, ["--config", str(ch.config), "messages", "show", "1", "--raw"])
    assert result.exit_code == 0 and result.stdout_bytes == raw
    assert "no message 99" in ch("messages", "show", "99", code=1).stderr
    ch("messages", "show", "one", code=2)


def test_reprocess_after_fixing_the_cause_accepts(app: App, ch: Cli, team: TeamClient) -> None:
    ch("teams", "set-status", "alpha", "suspended")
    ch("ingest", input=team.submit())
    ch("process", "--once")
    assert states(ch) == [(1, "quarantined", "team-not-allowed")]
    assert "teams set-status" in ch.json("messages", "show", "1")["next_step"]
    assert maildir_files(app) == []  # no reply to what is not authenticated

    ch("teams", "set-status", "alpha", "accredited")
    assert ch("messages", "reprocess", "1").stdout == "message 1: accepted\n"
    assert states(ch) == [(1, "accepted", None)]
    [stored] = ch.json("submissions", "list")
    assert (stored["team"], stored["message_id"], stored["revision"]) == ("alpha", 1, 1)
    assert len(maildir_files(app)) == 1  # the receipt went out with the reprocessing


def test_reprocess_quarantined_after_importing_the_missing_key(
    app: App, ch: Cli, team: TeamClient, tmp_path: Path
) -> None:
    from keys.gpg import GnuPG

    gpg = GnuPG(tmp_path / "own-beta")
    fpr = gpg.generate_key("CERT Beta", "cert@beta.example")
    gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    beta = TeamClient("beta", "cert@beta.example", gpg, fpr, app.identity.fingerprint)
    ch("teams", "add", "beta", "--name", "CERT Beta", "--email", "cert@beta.example")
    ch("ingest", input=beta.submit(TYPE1))
    ch("ingest", input=PLAIN)
    ch("ingest", input=beta.submit(TYPE2))
    ch("process", "--once")
    assert states(ch) == [
        (1, "quarantined", "unknown-key"),
        (2, "quarantined", "not-encrypted"),
        (3, "quarantined", "unknown-key"),
    ]
    assert "keys import" in ch.json("messages", "show", "1")["next_step"]

    key_file = tmp_path / "beta.asc"
    key_file.write_text(gpg.export_public(fpr))
    ch("keys", "import", "beta", str(key_file))
    assert ch("messages", "reprocess", "--quarantined").stdout.splitlines() == [
        "message 1: accepted",
        "message 2: quarantined (not-encrypted)",
        "message 3: accepted",
    ]
    assert [(s["team"], s["type"]) for s in ch.json("submissions", "list")] == [
        ("beta", "type1"),
        ("beta", "type2"),
    ]


def test_reprocess_refuses_what_it_should_not_run_again(
    app: App, ch: Cli, team: TeamClient
) -> None:
    ch("ingest", input=team.submit(TYPE1))
    ch("ingest", input=team.submit(TYPE1.replace("1204", "1300")))  # a correction
    ch("process", "--once")
    before = ch.json("submissions", "list")
    assert [s["revision"] for s in before] == [1, 2]

    ch("messages", "reprocess", code=2)
    ch("messages", "reprocess", "1", "--quarantined", code=2)
    assert "no message 9" in ch("messages", "reprocess", "9", code=1).stderr
    # Running message 1 again would store its old values as revision 3, over the correction.
    assert "accepted" in ch("messages", "reprocess", "1", code=1).stderr
    assert ch.json("submissions", "list") == before
    assert states(ch) == [(1, "accepted", None), (2, "accepted", None)]
    assert len(maildir_files(app)) == 2
    assert ch("messages", "reprocess", "--quarantined").stdout == ""  # none quarantined


# --- submissions and outbox -------------------------------------------------------------


def test_submissions_list_shows_every_revision_and_its_values(ch: Cli, team: TeamClient) -> None:
    ch("ingest", input=team.submit(TYPE1 + "\n" + TYPE2))
    ch("ingest", input=team.submit(TYPE1.replace("Requests: 1204", "Requests: 1300")))
    ch("process", "--once")

    rows = ch.json("submissions", "list")
    assert {"id", "team", "type", "period", "revision", "message_id", "values"} <= set(rows[0])
    assert [
        (r["id"], r["team"], r["type"], r["period"], r["revision"], r["message_id"]) for r in rows
    ] == [
        (1, "alpha", "type1", "2026-10", 1, 1),
        (2, "alpha", "type2", "2026-10", 1, 1),
        (3, "alpha", "type1", "2026-10", 2, 2),
    ]
    type1 = {
        "requests": 1204,
        "incidents-opened": 311,
        "incidents-closed": 298,
        "inbound-communication": 1650,
        "outbound-communication": 1422,
        "organisations-involved": 187,
        "hours-spent": 940.5,
    }
    assert rows[0]["values"] == type1
    assert rows[2]["values"] == type1 | {"requests": 1300}
    assert rows[1]["values"] == {
        "abusive-content/spam": 120,
        "intrusion-attempts/login-attempts": 43,
        "intrusions": 3,
        "malicious-code/virus": 12,
        "other": 1,
    }

    assert [r["id"] for r in ch.json("submissions", "list", "--type", "type2")] == [2]
    assert [
        r["id"]
        for r in ch.json(
            "submissions", "list", "--team", "alpha", "--period", "2026-10", "--type", "type1"
        )
    ] == [1, 3]
    assert ch.json("submissions", "list", "--team", "beta") == []
    assert ch.json("submissions", "list", "--period", "2026-09") == []
    header, *lines = ch("submissions", "list", "--type", "type1").stdout.splitlines()
    assert header.split() == ["ID", "TEAM", "TYPE", "PERIOD", "REVISION", "MESSAGE_ID"]
    assert [line.split() for line in lines] == [
        ["1", "alpha", "type1", "2026-10", "1", "1"],
        ["3", "alpha", "type1", "2026-10", "2", "2"],
    ]
    for bad in (["--period", "2026-13"], ["--period", "October"], ["--type", "type3"]):
        ch("submissions", "list", *bad, code=2)


def test_submissions_list_shows_each_count_as_sent_and_what_it_counts_as(
    app: App, ch: Cli, team: TeamClient, tmp_path: Path
) -> None:
    rsit = "Report: type2\nPeriod: 2026-10\nTaxonomy: rsit-1.3\n"
    ch("ingest", input=team.submit(f"{rsit}fraud/phishing: 7\nvulnerable/weak-crypto: 2\n"))
    ch("process", "--once")

    def sent(vocabulary: str, class_slug: str, type_slug: str | None) -> dict[str, Any]:
        return {"taxonomy": vocabulary, "class": class_slug, "type": type_slug}

    [row] = ch.json("submissions", "list")
    assert row["counts"] == [
        {
            "sent": sent("rsit-1.3", "fraud", "phishing"),
            "counts_as": sent("ecsirt-v2", "fraud", "masquerade"),
            "count": 7,
        },
        {
            "sent": sent("rsit-1.3", "vulnerable", "weak-crypto"),
            "counts_as": sent("ecsirt-v2", "other", None),
            "count": 2,
        },
    ]
    assert row["values"] == {"fraud/masquerade": 7, "other": 2}

    # The same stored counts, listed by a gateway counting in RSIT 1.3: as sent.
    config = tmp_path / "rsit.toml"
    config.write_text(config_toml(app.config, '[taxonomy]\ncanonical = "rsit-1.3"\n'))
    in_rsit = Cli(config)
    [row] = in_rsit.json("submissions", "list")
    assert [c["counts_as"] for c in row["counts"]] == [c["sent"] for c in row["counts"]]
    assert row["values"] == {"fraud/phishing": 7, "vulnerable/weak-crypto": 2}


def test_outbox_list_and_flush(app: App, ch: Cli, team: TeamClient, tmp_path: Path) -> None:
    ch("ingest", input=team.submit(TYPE1))
    process_message(app, 1)  # the pipeline queues the sealed receipt; nothing delivers it
    [entry] = ch.json("outbox", "list")
    assert (entry["kind"], entry["recipient"], entry["state"], entry["message_id"]) == (
        "receipt",
        team.email,
        "pending",
        1,
    )
    header, line = ch("outbox", "list").stdout.splitlines()
    assert header.split()[:5] == ["ID", "KIND", "RECIPIENT", "STATE", "ATTEMPTS"]
    assert line.split()[:5] == ["1", "receipt", team.email, "pending", "0"]
    assert maildir_files(app) == []

    assert ch("outbox", "flush").stdout == "1 sent, 0 retrying, 0 failed\n"
    [delivered] = maildir_files(app)
    head, body = delivered.read_bytes().split(b"\n", 1)
    assert head.strip() == f"Delivered-To: {team.email}".encode()
    assert email.message_from_bytes(body).get_content_type() == "multipart/encrypted"
    assert team.decrypt(body).decrypted
    assert [(e["state"], e["attempts"]) for e in ch.json("outbox", "list")] == [("sent", 1)]
    assert ch.json("outbox", "list", "--state", "pending") == []
    assert ch("outbox", "flush").stdout == "0 sent, 0 retrying, 0 failed\n"

    # A transport that fails: exit 1, the entry stays queued for a retry.
    ch("ingest", input=team.submit(TYPE2))
    process_message(app, 2)
    (tmp_path / "not-a-maildir").write_text("")
    broken_toml = tmp_path / "broken.toml"
    broken_toml.write_text(
        config_toml(app.config, f'[outbound]\nmaildir = "{tmp_path}/not-a-maildir"\n')
    )
    broken = Cli(broken_toml)
    assert broken("outbox", "flush", code=1).stdout == "0 sent, 1 retrying, 0 failed\n"
    [retrying] = ch.json("outbox", "list", "--state", "pending")
    assert retrying["attempts"] == 1 and "not-a-maildir" in retrying["last_error"]
    assert len(maildir_files(app)) == 1


# --- serve ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serving(config_file: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`clearinghouse serve` on `port`, its output in `log_path`; killed if still running."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*command(config_file), "serve", "--smtp", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=child_env(),
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_accepts_over_smtp_and_stops_on_sigterm(
    app: App, config_file: Path, ch: Cli, team: TeamClient, tmp_path: Path
) -> None:
    port, log_path = _free_port(), tmp_path / "serve.log"
    with _serving(config_file, port, log_path) as proc:

        def listening() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(listening, "the SMTP port", seconds=30, interval=0.1)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            assert smtp.sendmail(team.email, [INTAKE], team.submit()) == {}

        def delivered() -> bool:  # the maildir file is written just before it is marked
            sent = [e["state"] for e in ch.json("outbox", "list")] == ["sent"]
            return states(ch) == [(1, "accepted", None)] and sent

        wait_until(delivered, "the message to be accepted", seconds=30, interval=0.1)
        assert ch.json("messages", "list")[0]["channel"] == "smtp"
        assert len(maildir_files(app)) == 1

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log_path.read_text()
    assert "stopped" in log_path.read_text()


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found = " ".join((task / "children").read_text() for task in tasks.iterdir())
    return [int(child) for child in found.split()]


def test_serve_stops_with_an_error_when_its_smtp_door_process_dies(
    config_file: Path, tmp_path: Path
) -> None:
    port, log_path = _free_port(), tmp_path / "serve.log"
    with _serving(config_file, port, log_path) as proc:
        wait_until(lambda: _answers(port), "the SMTP door", seconds=60, interval=0.1)
        # The door answers from a process of its own, not from serve's.
        [door] = [pid for pid in _children(proc.pid) if _listens(pid, port)]
        os.kill(door, signal.SIGKILL)
        assert proc.wait(timeout=30) == 1, log_path.read_text()
    assert "the SMTP door process exited" in log_path.read_text()
    assert not _answers(port)


def _answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            return smtp.noop()[0] == 250
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on `port` (from /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f":{port:04X}"
    return any(r.split()[1].endswith(local) and r.split()[9] in inodes for r in rows)


def test_usage_errors_exit_2(ch: Cli) -> None:
    assert "--smtp" in ch("serve", "--smtp", "nonsense", code=2).stderr
    ch("messages", "list", "--state", "lost", code=2)
    ch("process", "--forever", code=2)
    ch("outbox", "list", "--state", "gone", code=2)


# --- demo -------------------------------------------------------------------------------


@pytest.fixture
def demo_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the demo makes its temporary directory, so that the test can look (a short
    path: gpg-agent's socket must fit), with an empty working directory and a
    configuration variable the demo must not read."""
    temp = Path(tempfile.mkdtemp(prefix="demo-test-"))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("CLEARINGHOUSE_CONFIG", str(tmp_path / "not-read.toml"))
    yield temp
    for keyring in temp.rglob("pubring.kbx"):  # a kept demo's agents
        subprocess.run(
            ["gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )
    shutil.rmtree(temp, ignore_errors=True)


def _demo(*args: str) -> str:
    result = CliRunner().invoke(cli, ["demo", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def test_demo_runs_and_prints_the_decrypted_receipt(demo_temp: Path) -> None:
    out = _demo()
    assert "the receipt to incidents@cert-north.example" in out
    assert "signature: good" in out
    assert "requests:" in out and "1200" in out  # the stored values, decrypted
    assert "rejected" in out and "unknown-key" in out
    [processed] = [line for line in out.splitlines() if line.startswith("4. processed: ")]
    # Each team's month and its history; the invalid report; the stranger.
    assert {"6 accepted", "1 rejected", "1 quarantined"} == set(
        processed.removeprefix("4. processed: ").partition(";")[0].split(", ")
    )
    [site] = [line for line in out.splitlines() if line.startswith("7. the public site")]
    assert site.endswith("/var/site/index.html") and "6 months" in site
    # It printed paths, says they go, and that --keep keeps them; then they are gone.
    assert "`clearinghouse demo --keep`" in out
    assert list(demo_temp.iterdir()) == []
    assert list(Path.cwd().iterdir()) == []  # nothing left behind in the cwd
    # Nor an open database connection: one left to the garbage collector still holds its
    # (deleted) files open here, and Python 3.13 reports it as a ResourceWarning later on.
    # (The write-turn lock files, -writer and -urgent, live as long as the engine object.)
    opened = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    database = re.compile(r"clearinghouse-demo-.*/clearinghouse\.db(-wal|-shm)?( \(deleted\))?$")
    assert [name for name in opened if database.search(name)] == []


def test_demo_keep_leaves_a_site_with_several_months_of_history(demo_temp: Path) -> None:
    out = _demo("--keep")
    [root] = demo_temp.iterdir()
    assert out.rstrip().endswith(f"kept {root}") and "demo --keep` or" not in out
    index = (root / "var" / "site" / "index.html").read_text("utf-8")
    months = re.findall(r'<th scope="row" class="month"><a href="(\d{4}-\d{2})/index.html">', index)
    newest = datetime.now(UTC).date()
    assert months == [shift(period_of(newest), -age) for age in range(1, 7)]  # newest first
    assert index.count("3 teams: published") == 2 * len(months)  # both types, every month
    for month in months:
        assert (root / "var" / "site" / month / "public.json").is_file()
    # A trend is a line: every month's point, in the table beside the chart.
    requests = index[index.index("Requests: average per team, all months") :]
    requests = requests[: requests.index("</table>")]
    assert requests.count("<tr>") == len(months) + 1  # heading row + one per month
