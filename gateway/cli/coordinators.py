"""`coordinators add`, `list` and `remove`: who receives the monthly summaries."""

from __future__ import annotations

from typing import Any

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, say
from store.db import open_session
from store.registry import list_coordinators


@click.group()
def coordinators() -> None:
    """Coordinators receive monthly summaries."""


@coordinators.command("add")
@click.argument("email")
@click.option("--key", "key_file", type=click.File("rb"), required=True)
@click.option("--name", default=None)
@pass_app
def coordinators_add(app: App, email: str, key_file: Any, name: str | None) -> None:
    """Register a coordinator with their public key."""
    c = app.registry.add_coordinator(email, key_file.read(), name)
    say(f"coordinator {c.email} added with key {c.fingerprint}")


@coordinators.command("list")
@json_option
@pass_app
def coordinators_list(app: App, as_json: bool) -> None:
    """List coordinators."""
    with open_session(app.engine) as s:
        rows = [
            {"email": c.email, "name": c.name, "fingerprint": c.fingerprint}
            for c in list_coordinators(s)
        ]
    emit(rows, as_json, ["email", "name", "fingerprint"])


@coordinators.command("remove")
@click.argument("email")
@pass_app
def coordinators_remove(app: App, email: str) -> None:
    """Remove a coordinator."""
    app.registry.remove_coordinator(email)
    say(f"coordinator {email} removed")
