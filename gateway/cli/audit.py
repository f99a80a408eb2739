"""`audit`: every change of the registry and the gateway key, newest last."""

from __future__ import annotations

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import audit_row, emit
from store.audit import list_entries
from store.db import open_session


@click.command()
@click.option("--subject", default=None, help="Only changes of this handle, key or address.")
@click.option("--limit", type=int, default=None, help="Only the newest N entries.")
@json_option
@pass_app
def audit(app: App, subject: str | None, limit: int | None, as_json: bool) -> None:
    """Every change of the registry and the gateway key: when, who, what."""
    with open_session(app.engine) as s:
        rows = [audit_row(e) for e in list_entries(s, subject=subject, limit=limit)]
    emit(rows, as_json, ["id", "at", "actor", "action", "subject", "details"])
