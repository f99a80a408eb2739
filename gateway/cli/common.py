"""What every command module shares: the App passed down by click, and `--json`."""

from __future__ import annotations

from typing import Any

import click

from gateway.app import App

pass_app = click.make_pass_decorator(App)


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)
