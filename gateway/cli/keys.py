"""`keys import`, `list`, `revoke` and `remove`: team keys in the registry and the keyring."""

from __future__ import annotations

from typing import Any

import click

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.cli.common import json_option, pass_app
from gateway.cli.views import emit, key_row, say
from gateway.jobs.welcome import has_usable_key, welcome_if_first_key
from keys.bindings import ImportedKey
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
    """Bind the public key(s) in FILE to team HANDLE.

    A key is bound only if the gateway can both verify its signatures and encrypt to
    it. A key bound already is refreshed (a new expiry, a revocation); one the
    registry revoked stays revoked, and the import is refused.
    """
    had_usable_key = has_usable_key(app, handle)
    for key in app.registry.import_keys(handle, file.read()):
        say(_imported_line(handle, key))
        for uid in key.user_ids:
            say(f"  {uid}")
    try:
        welcome = welcome_if_first_key(app, handle, had_usable_key)
    except ClearinghouseError as exc:  # the key is bound all the same
        raise ClearinghouseError(
            f"the key is bound, but the welcome mail was not queued ({exc}); "
            f"send it with `teams welcome {handle}`"
        ) from exc
    if welcome is not None and welcome.entry_id is not None:
        say(
            f"welcome mail queued to {welcome.email} (outbox {welcome.entry_id}): the intake "
            "address, the gateway key and how to send"
        )


def _imported_line(handle: str, key: ImportedKey) -> str:
    usability = key.usability
    until = usability.until if usability else key.expires_at
    expiry = f"usable until {until:%Y-%m-%d}" if until else "usable; nothing in it expires"
    if not key.updated:
        return f"bound {key.fingerprint} to {handle} ({expiry})"
    if key.revoked:
        return (
            f"refreshed {key.fingerprint} to {handle}: REVOKED by its owner; its signatures "
            "are refused from now on, and the team needs a new key"
        )
    if usability is not None and not usability.usable:
        return f"refreshed {key.fingerprint} to {handle}: {usability.summary}"
    return f"refreshed {key.fingerprint} to {handle} ({expiry})"


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
    say(f"revoked {key.fingerprint}; its signatures are now refused (key-revoked)")


@keys_group.command("remove")
@click.argument("fingerprint")
@pass_app
def keys_remove(app: App, fingerprint: str) -> None:
    """Remove a key from the registry and the gateway keyring (audited).

    For a key bound by mistake, or planted: `keys revoke` keeps a key in the keyring,
    where it still shadows any other key that shares one of its key packets.
    """
    removed = app.registry.remove_key(fingerprint)
    owner = f"bound to team {removed.team}" if removed.team else "bound to no team"
    keyring = " and the gateway keyring" if removed.in_keyring else ""
    say(f"removed {removed.fingerprint} ({owner}) from the registry{keyring}")
