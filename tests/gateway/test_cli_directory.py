"""`teams sync`, `teams set-ti` and `teams add --ti` on the command line, `health`'s
directory checks, and the sync's effect on real mail: a team lowered to `listed` is
quarantined, a key bound by the sync signs reports that are accepted over SMTP."""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli
from click.testing import CliRunner
from directory_support import ti_team, write_directory
from smtp_support import HOST, Start
from support import INTAKE, TYPE1, TeamClient, config_toml

from gateway.app import App
from gateway.cli import cli as gateway_cli
from gateway.worker import Worker
from keys import directory_sync
from keys.directory import read_directory
from keys.directory_plan import SyncOptions
from keys.directory_sync import OfferedKeys
from keys.gpg import GnuPG
from store import audit, spool
from store.db import open_session

MakeTeam = Callable[..., TeamClient]


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


def with_registry(app: App, tmp_path: Path, section: str) -> Cli:
    path = tmp_path / "registry.toml"
    path.write_text(config_toml(app.config, f"[registry]\n{section}\n"))
    return Cli(path)


@pytest.fixture
def five(app: App, make_team: MakeTeam, ch: Cli) -> dict[str, TeamClient]:
    """Five accredited teams with keys, each linked to its TI entry (handle upper-cased)."""
    teams = {h: make_team(h) for h in ("alpha", "beta", "gamma", "delta", "epsilon")}
    for handle in teams:
        ch("teams", "set-ti", handle, handle.upper())
    return teams


def directory(tmp_path: Path, teams: dict[str, TeamClient], **codes: str) -> Path:
    entries = [
        ti_team(h.upper(), codes.get(h, "a"), fingerprints=[t.fingerprint], email=t.email)
        for h, t in teams.items()
    ]
    return write_directory(tmp_path / "teams.json", entries + [ti_team("OUTSIDER", "c")])


def audit_count(app: App) -> int:
    with open_session(app.engine) as s:
        return len(audit.list_entries(s))


def statuses(ch: Cli) -> dict[str, str]:
    return {t["handle"]: t["status"] for t in ch.json("teams", "list")}


# --- links and what teams show/list tell ----------------------------------------------------


def test_a_team_is_linked_with_add_ti_or_set_ti_and_shows_the_directory(
    app: App, ch: Cli, tmp_path: Path
) -> None:
    gpg = GnuPG(tmp_path / "kappa-own")
    fpr = gpg.generate_key("CERT kappa", "cert@kappa.example")
    added = ch("teams", "add", "kappa", "--name", "KAPPA", "--email", "cert@kappa.example",
               "--ti", "  KAPPA  CERT ")  # fmt: skip
    assert "team kappa added" in added.stdout
    shown = ch.json("teams", "show", "kappa")
    assert (shown["ti"], shown["directory"]) == ("KAPPA CERT", None)  # not synced yet

    teams = [ti_team("Kappa Cert", "c", fingerprints=[fpr], since="2022-02-22")]
    path = write_directory(tmp_path / "teams.json", teams)
    ch("teams", "sync", "--ti", str(path), "--apply", "--force")

    shown = ch.json("teams", "show", "kappa")
    assert shown["status"] == "certified"
    seen = shown["directory"].pop("seen_at")
    assert datetime.fromisoformat(seen) > datetime.now(UTC) - timedelta(minutes=5)
    assert shown["directory"] == {
        "short_name": "Kappa Cert",
        "classification": "c",
        "since": "2022-02-22",
        "fingerprints": [{"fingerprint": fpr, "expires": "2031-06-30"}],
    }
    [listed] = ch.json("teams", "list")
    assert listed["ti"] == "KAPPA CERT" and listed["directory"]["classification"] == "c"
    assert "TI" in ch("teams", "list").stdout.splitlines()[0]

    assert "linked to TI entry 'K2'" in ch("teams", "set-ti", "kappa", "K2").stdout
    assert ch.json("teams", "show", "kappa")["directory"] is None  # K2's is not known yet
    assert "linked to no TI entry" in ch("teams", "set-ti", "kappa", "--none").stdout
    assert "give the TI short name" in ch("teams", "set-ti", "kappa", code=2).stderr
    assert "give the TI short name" in ch("teams", "set-ti", "kappa", "K", "--none", code=2).stderr
    refused = ch("teams", "set-ti", "nobody", "X", code=1)
    assert refused.stderr.startswith("error: no team 'nobody'")


# --- the plan, as a table and as JSON --------------------------------------------------------


CHANGE_FIELDS = {"kind", "team", "ti", "from", "to", "lowers", "detail"}
REPORT_FIELDS = {"kind", "team", "ti", "fingerprint", "expires", "detail"}


def check_schema(document: dict[str, Any]) -> None:
    """The JSON plan's schema (gateway/directory_view.py): names and types, nothing else."""
    assert set(document) == {
        "schema", "source", "applied", "options", "directory", "registry", "guard",
        "changes", "reports", "unregistered", "keys",
    }  # fmt: skip
    assert document["schema"] == 1 and isinstance(document["source"], str)
    assert isinstance(document["applied"], bool)
    options = document["options"]
    assert set(options) == {"apply", "suspend_missing", "update_contacts", "force", "keys"}
    assert all(isinstance(options[k], bool) for k in set(options) - {"keys"})
    assert options["keys"] is None or isinstance(options["keys"], str)
    assert set(document["directory"]) == {"teams"}
    assert set(document["registry"]) == {"teams", "linked"}
    assert set(document["guard"]) == {"teams", "lowered", "trips", "refuses"}
    assert set(document["keys"]) == {"offered", "matched"}
    for change in document["changes"]:
        assert set(change) == CHANGE_FIELDS and change["kind"] in {"status", "key", "contact"}
        assert isinstance(change["lowers"], bool)
    for report in document["reports"]:
        assert set(report) == REPORT_FIELDS
        assert report["expires"] is None or date.fromisoformat(report["expires"])
    for entry in document["unregistered"]:
        assert set(entry) == {"ti", "classification", "country"}


def test_the_plan_changes_nothing_and_its_json_has_a_stable_schema(
    app: App, ch: Cli, tmp_path: Path, five: dict[str, TeamClient]
) -> None:
    path = directory(tmp_path, five, alpha="c", beta="l")
    before, entries = statuses(ch), audit_count(app)

    plan = ch.json("teams", "sync", "--ti", str(path))

    check_schema(plan)
    assert statuses(ch) == before and audit_count(app) == entries
    assert (plan["applied"], plan["source"], plan["options"]["apply"]) == (False, str(path), False)
    assert plan["directory"] == {"teams": 6} and plan["registry"] == {"teams": 5, "linked": 5}
    assert plan["guard"] == {"teams": 5, "lowered": 1, "trips": False, "refuses": False}
    assert [(c["kind"], c["team"], c["from"], c["to"], c["lowers"]) for c in plan["changes"]] == [
        ("status", "alpha", "accredited", "certified", False),
        ("status", "beta", "accredited", "listed", True),
    ]
    assert plan["unregistered"] == [{"ti": "OUTSIDER", "classification": "c", "country": "XX"}]

    text = ch("teams", "sync", "--ti", str(path)).stdout
    assert f"TI directory {path}: 6 teams; registry: 5 teams, 5 linked" in text
    rows = [line.split()[:5] for line in text.splitlines()]
    assert ["status", "beta", "BETA", "accredited", "listed"] in rows
    assert "OUTSIDER" in text and "Plan only, nothing changed: --apply makes 2 changes." in text

    applied = ch.json("teams", "sync", "--ti", str(path), "--apply")

    check_schema(applied)
    assert applied["applied"] and len(applied["changes"]) == 2
    assert statuses(ch) == before | {"alpha": "certified", "beta": "listed"}
    assert audit_count(app) == entries + 2
    again = ch("teams", "sync", "--ti", str(path), "--apply")
    assert "Applied: 0 changes" in again.stdout and audit_count(app) == entries + 2


def test_the_guard_prints_the_plan_then_fails_having_changed_nothing(
    app: App, ch: Cli, tmp_path: Path, five: dict[str, TeamClient]
) -> None:
    path = directory(tmp_path, five, alpha="l", beta="l")  # 2 of 5 lowered
    before, entries = statuses(ch), audit_count(app)

    refused = ch("teams", "sync", "--ti", str(path), "--apply", code=1)

    assert "REFUSED, nothing changed: the sync lowers the status of 2 of 5 teams" in refused.stdout
    assert refused.stderr.startswith("error: nothing changed: the sync lowers")
    assert len(refused.stderr.splitlines()) == 1 and "--apply --force" in refused.stderr
    assert statuses(ch) == before and audit_count(app) == entries
    as_json = json.loads(ch("teams", "sync", "--ti", str(path), "--apply", "--json", code=1).stdout)
    assert as_json["guard"]["refuses"] and not as_json["applied"]
    plan = ch("teams", "sync", "--ti", str(path)).stdout  # the plan warns, and exits 0
    assert "--apply refuses this: the sync lowers the status of 2 of 5 teams" in plan

    ch("teams", "sync", "--ti", str(path), "--apply", "--force")
    assert statuses(ch)["alpha"] == statuses(ch)["beta"] == "listed"


# --- bad input: one line, exit status, nothing changed ---------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<html>Service unavailable</html>", "is not valid JSON (lexical error"),
        (b'{"teams": []}', "holds an object, not a JSON array of teams"),
        (b'[{"official_name": "x", "classification": {"code": "a"}}]', "entry 1 has no usable"),
        (b'[{"short_name": "ALPHA"}]', "entry 1 ('ALPHA') has no classification code"),
        (
            b'[{"short_name": "ALPHA", "classification": {"code": "g"}}]',
            "unknown classification code 'g'",
        ),
        (
            b'[{"short_name": "ALPHA", "classification": {"code": "a"}, '
            b'"pgp_keys": [{"fingerprint": "ABCD 1234"}]}]',
            "fingerprint 'ABCD 1234' is not 40 hex digits",
        ),
        (
            b'[{"short_name": "ALPHA", "classification": {"code": "a"}},'
            b' {"short_name": "alpha", "classification": {"code": "l"}}]',
            "entries 1 and 2 have the same short_name 'alpha'",
        ),
    ],
)
def test_a_bad_directory_file_changes_nothing(
    app: App,
    ch: Cli,
    tmp_path: Path,
    five: dict[str, TeamClient],
    content: bytes,
    expected: str,
) -> None:
    path = tmp_path / "teams.json"
    path.write_bytes(content)
    before, entries = statuses(ch), audit_count(app)
    result = ch("teams", "sync", "--ti", str(path), "--apply", "--suspend-missing", code=1)
    assert result.stderr.startswith(f"error: {path}") and expected in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert statuses(ch) == before and audit_count(app) == entries


def test_a_file_of_several_mb_is_refused_unread_and_a_stream_at_the_cap(
    app: App, ch: Cli, tmp_path: Path, five: dict[str, TeamClient]
) -> None:
    huge = tmp_path / "huge.json"
    entry = json.dumps(ti_team("PADDING", "l"))
    with huge.open("w") as out:  # 9 MB of entries: over the default cap of 8 MiB
        out.write("[" + ",".join([entry] * (9_000_000 // len(entry))) + "]")
    result = ch("teams", "sync", "--ti", str(huge), "--apply", code=1)
    assert "more than [registry] ti_max_bytes (8388608)" in result.stderr

    small_cap = with_registry(app, tmp_path, "ti_max_bytes = 100000")
    stdin = huge.read_bytes()[:200_000]
    streamed = small_cap("teams", "sync", "--ti", "-", "--apply", input=stdin, code=1)
    assert streamed.stderr == (
        "error: - is larger than 100000 bytes ([registry] ti_max_bytes): is it TI's "
        "teams.json? If the directory has grown, raise the limit\n"
    )
    assert statuses(ch) == dict.fromkeys(five, "accredited")
    fine = directory(tmp_path, five).read_bytes()
    assert "Nothing to change." in ch("teams", "sync", "--ti", "-", input=fine).stdout


def test_a_missing_file_or_keyring_is_one_line(ch: Cli, tmp_path: Path) -> None:
    missing = ch("teams", "sync", "--ti", str(tmp_path / "nowhere.json"), code=1)
    assert (
        missing.stderr
        == f"error: {tmp_path / 'nowhere.json'}: cannot read: No such file or directory\n"
    )
    path = write_directory(tmp_path / "teams.json", [ti_team("A", "a")])
    nokeys = ch("teams", "sync", "--ti", str(path), "--keys", str(tmp_path / "k.asc"), code=2)
    assert "does not exist" in nokeys.stderr


# --- HTTPS -----------------------------------------------------------------------------------


class _Directory(BaseHTTPRequestHandler):
    body = b""
    claimed: int | None = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(self.claimed or len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def https(certificate: tuple[Path, Path]) -> Iterator[tuple[str, type[_Directory]]]:
    """An HTTPS server on loopback with the throwaway certificate: (base URL, handler)."""

    class Handler(_Directory):
        pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://{HOST}:{server.server_address[1]}/directory/teams.json", Handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_directory_is_fetched_over_verified_https_only(
    ch: Cli,
    tmp_path: Path,
    five: dict[str, TeamClient],
    https: tuple[str, type[_Directory]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, handler = https
    handler.body = directory(tmp_path, five, alpha="c").read_bytes()
    untrusted = ch("teams", "sync", "--ti", url, "--apply", code=1)
    assert untrusted.stderr.startswith(f"error: cannot fetch {url}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert statuses(ch)["alpha"] == "accredited"

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the system's CAs, in a test
    ch("teams", "sync", "--ti", url, "--apply")
    assert statuses(ch)["alpha"] == "certified"

    handler.claimed = 9_000_000
    big = ch("teams", "sync", "--ti", url, code=1)
    assert "is 9000000 bytes, more than [registry] ti_max_bytes" in big.stderr
    plain = ch("teams", "sync", "--ti", url.replace("https", "http"), code=2)
    assert "only https:// URLs are fetched" in plain.stderr


# --- health ----------------------------------------------------------------------------------


def health(cli: Cli) -> dict[str, dict[str, Any]]:
    """`health --json` by check name; it exits 1 when any fails, and that is checked too."""
    result = CliRunner().invoke(gateway_cli, ["--config", str(cli.config), "health", "--json"])
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == (0 if all(c["ok"] for c in checks.values()) else 1)
    return checks


def apply_at(app: App, path: Path, when: datetime) -> None:
    with path.open("rb") as stream:
        read = read_directory(stream, source=str(path), max_bytes=1 << 20)
    with OfferedKeys.open(None) as offered:
        directory_sync.apply(app.registry, read, offered, SyncOptions(), when)


def test_health_reports_a_sync_that_has_not_run_and_keys_tis_dates_expire(
    app: App, tmp_path: Path, five: dict[str, TeamClient]
) -> None:
    cli = with_registry(app, tmp_path, "ti_max_age_days = 2")
    never = health(cli)["ti-directory"]
    assert (
        not never["ok"] and "5 of 5 linked teams not seen by a sync for 2 days" in never["detail"]
    )
    assert "alpha (never synced)" in never["detail"]

    path = directory(tmp_path, five)
    apply_at(app, path, datetime.now(UTC) - timedelta(days=3))
    stale = health(cli)["ti-directory"]
    assert not stale["ok"] and "clearinghouse-ti-sync.timer" in stale["detail"]
    apply_at(app, path, datetime.now(UTC) - timedelta(days=1))
    assert health(cli)["ti-directory"] == {
        "name": "ti-directory",
        "ok": True,
        "detail": "5 linked teams seen by a sync within 2 days",
    }
    assert health(cli)["ti-keys"]["ok"]

    soon = (datetime.now(UTC) + timedelta(days=10)).date()
    entries = json.loads(path.read_text())
    entries[1]["pgp_keys"][0]["expires"] = soon.isoformat()
    write_directory(path, entries)
    apply_at(app, path, datetime.now(UTC))
    keys = health(cli)["ti-keys"]
    assert not keys["ok"]
    assert f"beta {five['beta'].fingerprint} on {soon:%Y-%m-%d}" in keys["detail"]
    relaxed = with_registry(app, tmp_path, "ti_max_age_days = 2\n[health]\nkey_expiry_days = 5")
    assert health(relaxed)["ti-keys"]["ok"]


# --- the sync's effect on mail ---------------------------------------------------------------


def send(port: int, raw: bytes, sender: str) -> int:
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.ehlo("mta.example")
        smtp.mail(sender)
        assert smtp.rcpt(INTAKE)[0] == 250
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return int(reply.decode().rsplit(" ", 1)[1])


def outcome(app: App, message_id: int) -> tuple[str, str | None]:
    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id)
        assert message is not None
        return message.state, message.reason


def test_a_team_lowered_to_listed_is_quarantined_team_not_allowed(
    app: App,
    ch: Cli,
    tmp_path: Path,
    five: dict[str, TeamClient],
    worker: Worker,
    smtp_server: Start,
) -> None:
    port = smtp_server()
    alpha = five["alpha"]
    accepted = send(port, alpha.submit(TYPE1), alpha.email)
    assert worker.run_once() == {"accepted": 1}
    assert outcome(app, accepted) == ("accepted", None)

    ch("teams", "sync", "--ti", str(directory(tmp_path, five, alpha="l")), "--apply")

    refused = send(port, alpha.submit(TYPE1.replace("1204", "1205")), alpha.email)
    assert worker.run_once() == {"quarantined": 1}
    assert outcome(app, refused) == ("quarantined", "team-not-allowed")


def test_a_key_the_sync_binds_signs_reports_accepted_over_smtp(
    app: App,
    ch: Cli,
    tmp_path: Path,
    five: dict[str, TeamClient],
    worker: Worker,
    smtp_server: Start,
) -> None:
    own = GnuPG(tmp_path / "kappa-own")
    fpr = own.generate_key("CERT kappa", "cert@kappa.example")
    own.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    kappa = TeamClient("kappa", "cert@kappa.example", own, fpr, app.identity.fingerprint)
    ch("teams", "add", "kappa", "--name", "KAPPA", "--email", kappa.email, "--ti", "KAPPA")
    port = smtp_server()
    early = send(port, kappa.submit(TYPE1), kappa.email)
    assert worker.run_once() == {"quarantined": 1}
    assert outcome(app, early) == ("quarantined", "unknown-key")

    path = directory(tmp_path, five)
    entries = json.loads(path.read_text()) + [ti_team("KAPPA", "a", fingerprints=[fpr])]
    write_directory(path, entries)
    keyring = tmp_path / "members-keys.asc"
    keyring.write_text(own.export_public(fpr) + five["alpha"].gpg.export_public(
        five["alpha"].fingerprint))  # fmt: skip
    result = ch.json("teams", "sync", "--ti", str(path), "--keys", str(keyring), "--apply")
    assert [(c["kind"], c["team"], c["to"]) for c in result["changes"]] == [("key", "kappa", fpr)]
    assert result["keys"] == {"offered": 2, "matched": 2}

    accepted = send(port, kappa.submit(TYPE1), kappa.email)
    assert worker.run_once() == {"accepted": 1}
    assert outcome(app, accepted) == ("accepted", None)


def test_a_synced_team_can_be_removed_with_what_the_directory_said_of_it(
    app: App, ch: Cli, tmp_path: Path, five: dict[str, TeamClient]
) -> None:
    ch("teams", "sync", "--ti", str(directory(tmp_path, five)), "--apply")
    assert ch.json("teams", "show", "alpha")["directory"] is not None
    ch("teams", "remove", "alpha")
    assert "alpha" not in [t["handle"] for t in ch.json("teams", "list")]
    ch("teams", "add", "alpha", "--name", "Alpha again", "--email", "a@alpha.example")
    assert ch.json("teams", "show", "alpha")["directory"] is None
