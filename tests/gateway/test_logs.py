"""Structured logs: one event per line, message id/team/state/reason on every outcome,
and nothing decrypted in any line, whatever the level.

The formatters are tested on records; the pipeline on real signed and encrypted mail
(support.py) with every record captured at DEBUG; the command line in a child process,
since only there does the CLI own the root logger (pytest owns it in-process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import INTAKE, TYPE1, TYPE2, TeamClient, config_toml

from gateway.app import App
from gateway.logs import JsonFormatter, KeyValueFormatter, event, setup_logging
from gateway.spool import accept
from gateway.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRET-MARKER-7f3a91"  # inside the signed and encrypted reports only


def _record(msg: str, *args: object, **fields: object) -> logging.LogRecord:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("tests.logs.formatter")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Keep()
    logger.addHandler(handler)
    try:
        if fields:
            event(logger, msg % args if args else msg, **fields)
        else:
            logger.warning(msg, *args)
    finally:
        logger.removeHandler(handler)
    return records[0]


def test_key_value_lines_keep_fields_and_stay_one_line() -> None:
    record = _record(
        "message processed", message_id=7, team="cert-x", state="rejected", reason=None
    )
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert ' msg="message processed" ' in line
    assert line.endswith("message_id=7 team=cert-x state=rejected reason=-")
    assert line.startswith("time=") and " level=info logger=tests.logs.formatter " in line

    broken = KeyValueFormatter().format(_record('two\nlines and a "quote"'))
    assert "\n" not in broken and 'msg="two\\nlines and a \\"quote\\""' in broken


def test_json_lines_carry_the_fields_and_the_traceback_on_one_line() -> None:
    record = _record("message processed", message_id=3, team=None, state="quarantined",
                     reason="unknown-key")  # fmt: skip
    data = json.loads(JsonFormatter().format(record))
    assert {k: data[k] for k in ("msg", "message_id", "team", "state", "reason", "level")} == {
        "msg": "message processed",
        "message_id": 3,
        "team": None,
        "state": "quarantined",
        "reason": "unknown-key",
        "level": "info",
    }
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing = _record("failed")
        failing.exc_info = sys.exc_info()
    line = JsonFormatter().format(failing)
    assert "\n" not in line and "RuntimeError: boom" in json.loads(line)["exc"]


def test_a_root_logger_configured_by_someone_else_is_left_alone() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    assert before  # pytest's capture handlers
    assert setup_logging("json") is False
    assert root.handlers == before


def test_event_fields_may_not_hide_the_base_keys() -> None:
    with pytest.raises(ValueError, match="reserved"):
        event(logging.getLogger("tests.logs"), "x", msg="overwritten")


def test_pipeline_logs_one_event_per_message_and_nothing_decrypted(
    app: App,
    team: TeamClient,
    worker: Worker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keys.gpg import GnuPG

    stranger_gpg = GnuPG(tmp_path / "stranger")
    stranger_fpr = stranger_gpg.generate_key("Stranger", "cert@alpha.example")
    stranger_gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    stranger = TeamClient(
        "x", "cert@alpha.example", stranger_gpg, stranger_fpr, team.gateway_fingerprint
    )
    marked = f"# {SECRET}\n{TYPE1}"
    accepted = team.submit(marked)  # the marker is a comment line
    mails = [
        accepted,
        team.submit(TYPE2.replace("Intrusions: 3", f"Intrusions: {SECRET}")),  # rejected
        accepted,  # the same bytes again: a duplicate
        stranger.submit(marked),  # quarantined: unknown-key
    ]
    # Everything at DEBUG, python-gnupg included (the CLI quietens it; here it may talk).
    monkeypatch.setattr(logging.getLogger("gnupg"), "level", logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    ids = [accept(app.engine, raw, "smtp")[0] for raw in mails]
    worker.run_once()
    worker.flush()

    events = [r for r in caplog.records if r.getMessage() == "message processed"]
    seen = [
        {
            k: v
            for k, v in json.loads(JsonFormatter().format(r)).items()
            if k in ("message_id", "team", "state", "reason")
        }  # fmt: skip
        for r in events
    ]
    assert seen == [
        {"message_id": ids[0], "team": "alpha", "state": "accepted", "reason": None},
        {"message_id": ids[1], "team": "alpha", "state": "rejected", "reason": "invalid-report"},
        {"message_id": ids[2], "team": "alpha", "state": "duplicate", "reason": None},
        {"message_id": ids[3], "team": None, "state": "quarantined", "reason": "unknown-key"},
    ]
    assert {r.funcName for r in events} == {"process_message"}  # named by the pipeline
    lines = [f.format(r) for r in caplog.records for f in (JsonFormatter(), KeyValueFormatter())]
    # Nothing else, even at DEBUG: gpg's runs for these messages log nothing (keys/gpg.py
    # runs gpg itself, without python-gnupg's debug line for every status line).
    assert [r.getMessage() for r in caplog.records] == ["message processed"] * len(mails)
    assert not [line for line in lines if SECRET in line]
    assert all("\n" not in line for line in lines)


def _run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLEARINGHOUSE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("chosen_by", ["option", "config"])
def test_the_command_line_writes_json_lines(
    app: App, team: TeamClient, tmp_path: Path, chosen_by: str
) -> None:
    config = tmp_path / "clearinghouse.toml"
    extra = '[logging]\nformat = "json"\n' if chosen_by == "config" else ""
    config.write_text(config_toml(app.config, extra))
    accept(app.engine, team.submit(f"# {SECRET}\n{TYPE1}"), "smtp")
    option = ["--log-format", "json"] if chosen_by == "option" else []

    result = _run_cli(config, *option, "process", "--once")

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    [outcome] = [r for r in records if r["msg"] == "message processed"]
    assert (outcome["message_id"], outcome["team"], outcome["state"], outcome["reason"]) == (
        1,
        "alpha",
        "accepted",
        None,
    )
    assert SECRET not in result.stderr and SECRET not in result.stdout


def test_text_is_the_default_and_debug_adds_no_content(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    config = tmp_path / "clearinghouse.toml"
    config.write_text(config_toml(app.config))
    accept(app.engine, team.submit(f"# {SECRET}\n{TYPE1}", to=INTAKE), "smtp")

    result = _run_cli(config, "-v", "process", "--once")

    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stderr.splitlines() if 'msg="message processed"' in x]
    assert line.endswith("message_id=1 team=alpha state=accepted reason=-")
    assert all(x.startswith("time=") for x in result.stderr.splitlines())
    assert SECRET not in result.stderr
