"""The command line in-process for tests: `Cli(config)("teams", "list")`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from gateway.cli import cli


class Cli:
    """`clearinghouse [--config FILE] ARGS...` in-process; checks the exit status."""

    def __init__(self, config: Path | None) -> None:
        self.config = config

    def __call__(self, *args: str, code: int = 0, input: bytes | str | None = None) -> Result:
        argv = (["--config", str(self.config)] if self.config else []) + list(args)
        result = CliRunner().invoke(cli, argv, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback is never an acceptable answer
        assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


def write_config(path: Path, home: Path, extra: str = "") -> Path:
    path.write_text(f"[clearinghouse]\nhome = {json.dumps(str(home))}\n{extra}")
    return path
