"""`keys import`, `list` and `revoke`: team keys in the registry and the gateway keyring."""

from __future__ import annotations

from typing import Any

import click

from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, key_row
from store.db import open_session
from store.registry import list_keys


@click.group("keys")
def keys_group() -> None:
    """Team keys in the registry and the gateway keyring."""


@keys_group.command("import")
@click.argument("handle")
@click.argument("file", type=click.File("rb"))
@pass_app
def keys_import(app: App, handle: str, file: Any) -> None:
    """Bind the public key(s) in FILE to team HANDLE."""
    for key in app.registry.import_keys(handle, file.read()):
        verb = "refreshed" if key.updated else "bound"
        expiry = f"expires {key.expires_at:%Y-%m-%d}" if key.expires_at else "no expiry"
        click.echo(
            f"{verb} {key.fingerprint} to {handle} ({expiry}){' REVOKED' if key.revoked else ''}"
        )
        for uid in key.user_ids:
            click.echo(f"  {uid}")


@keys_group.command("list")
@json_option
@pass_app
def keys_list(app: App, as_json: bool) -> None:
    """List bound keys."""
    with open_session(app.engine) as s:
        rows = [key_row(s, k) for k in list_keys(s)]
    emit(rows, as_json, ["fingerprint", "team", "expires_at", "revoked_at", "user_ids"])


@keys_group.command("revoke")
@click.argument("fingerprint")
@click.option("--reason", default=None)
@pass_app
def keys_revoke(app: App, fingerprint: str, reason: str | None) -> None:
    """Stop accepting signatures by a key."""
    key = app.registry.revoke_key(fingerprint, reason)
    click.echo(f"revoked {key.fingerprint}; its signatures are now refused (key-revoked)")
