"""Progress bars of long commands: drawn on stderr, stdout keeps its lines unchanged."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from support import INTAKE, TYPE1, config_toml

from gateway.app import App
from gateway.cli import cli
from gateway.cli.progress import collect, steps
from gateway.spool import accept
from gateway.worker import Worker

PLAIN = f"From: cert@alpha.example\r\nTo: {INTAKE}\r\n\r\n{TYPE1}".encode()


def test_collect_and_steps_keep_every_item_and_line() -> None:
    assert collect(iter(range(5)), 5, "counting") == [0, 1, 2, 3, 4]
    assert collect(iter(()), 0, "nothing") == []
    echoed: list[str] = []
    with steps("working", 2, echoed.append) as step:
        for line in ("one", "two", "three"):  # more than estimated: still fine
            step(line)
        assert echoed == []  # printed after the bar, not into it
    assert echoed == ["one", "two", "three"]


def test_reprocess_quarantined_shows_a_bar_on_stderr_only(
    app: App, worker: Worker, tmp_path: Path
) -> None:
    for n in range(3):
        accept(app.engine, PLAIN + str(n).encode(), "ingest")
    worker.run_once()
    config = tmp_path / "clearinghouse.toml"
    config.write_text(config_toml(app.config))

    result = CliRunner().invoke(cli, ["--config", str(config), "messages", "reprocess",
                                      "--quarantined"])  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"message {n}: quarantined (not-encrypted)" for n in (1, 2, 3)
    ]
    assert "reprocessing 3 quarantined" in result.stderr
