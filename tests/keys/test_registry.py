"""keys/registry.py: teams, their pinned keys and coordinators, over SQLite and real gpg.

The `app` fixture gives a fresh store and gateway keyring; keys to bind are generated in
separate homes, as a team would send them, and changed there with the gpg command line.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import TeamClient

from contract.errors import RegistryError
from gateway.app import App
from keys.bindings import ImportedKey
from keys.gpg import GnuPG
from keys.policy import Binding
from keys.registry import Registry, check_address
from store import registry as q
from store.db import open_session


def gpg_cli(home: Path, *args: str) -> bytes:
    batch = ["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    cmd = ["gpg", "--homedir", str(home), *batch, *args]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


class KeyOwner:
    """A team or coordinator's own keyring, outside the gateway."""

    def __init__(self, home: Path) -> None:
        self.gpg = GnuPG(home)

    def new_key(self, email: str, *, days_ago: int = 0, expire: str = "never") -> str:
        args = ["--quick-gen-key", f"Owner <{email}>", "future-default", "default", expire]
        if days_ago:
            created = int(time.time()) - days_ago * 86_400
            args = ["--faked-system-time", str(created), *args]
        gpg_cli(self.gpg.home, *args)
        listing = gpg_cli(self.gpg.home, "--with-colons", "--list-keys", f"<{email}>").decode()
        return next(row.split(":")[9] for row in listing.splitlines() if row.startswith("fpr:"))

    def public(self, *fingerprints: str) -> bytes:
        return gpg_cli(self.gpg.home, "--armor", "--export", *fingerprints)

    def secret(self, fingerprint: str) -> bytes:
        return gpg_cli(self.gpg.home, "--armor", "--export-secret-keys", fingerprint)

    def revoke(self, fingerprint: str) -> None:
        """Import the revocation certificate gpg made with the key (as its owner would)."""
        cert = self.gpg.home / "openpgp-revocs.d" / f"{fingerprint}.rev"
        armored = cert.read_text().replace(":-----BEGIN PGP", "-----BEGIN PGP")
        (self.gpg.home / "revoke.asc").write_text(armored)
        gpg_cli(self.gpg.home, "--import", str(self.gpg.home / "revoke.asc"))


@pytest.fixture
def owner(tmp_path: Path) -> KeyOwner:
    return KeyOwner(tmp_path / "owner")


@pytest.fixture
def registry(app: App) -> Registry:
    return app.registry


def bound_keys(app: App) -> dict[str, str]:
    """Fingerprint -> team handle, for every key in the registry."""
    with open_session(app.engine) as s:
        handles = q.team_handles(s)
        return {k.fingerprint: handles[k.team_id] for k in q.list_keys(s)}


def binding(app: App, fingerprint: str) -> Binding | None:
    with open_session(app.engine) as s:
        return app.registry.binding(s, fingerprint)


def encryption_key(app: App, handle: str) -> str | None:
    with open_session(app.engine) as s:
        return app.registry.encryption_key(s, app.registry.team(s, handle))


# --- teams ----------------------------------------------------------------------------


def test_add_team(app: App, registry: Registry) -> None:
    team = registry.add_team(
        "cert-alpha.eu_1",
        name="CERT Alpha",
        email="CERT@Alpha.Example",
        status="certified",
        country="de",
    )
    assert (team.handle, team.email, team.status, team.country) == (
        "cert-alpha.eu_1",
        "cert@alpha.example",
        "certified",
        "DE",
    )
    assert team.id is not None
    default = registry.add_team("beta", name="Beta", email="soc@beta.example")
    assert (default.status, default.country) == ("accredited", None)
    with open_session(app.engine) as s:
        assert [t.handle for t in q.list_teams(s)] == ["beta", "cert-alpha.eu_1"]


@pytest.mark.parametrize(
    "handle",
    ["", "Alpha", "-alpha", ".alpha", "al pha", "al/pha", "alpha!", "ä", "a" * 64, "alpha\n"],
)
def test_bad_handles_are_refused(registry: Registry, handle: str) -> None:
    # The message gives the whole rule: characters, first character and length.
    rule = "must be 1 to 63 characters: lower-case letters, digits, '.', '_' or '-', starting"
    with pytest.raises(RegistryError, match=re.escape(rule)):
        registry.add_team(handle, name="X", email="x@x.example")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("CERT" * 51, "204 characters long; at most 200"),
        ("CERT-X\r\nBcc: evil", "line break or control character"),
        ("CERT\x1b[31mRED", "line break or control character"),
        ("CERT\u202eX", "line break or control character"),  # a bidi override
    ],
)
def test_team_names_are_one_printable_line_of_limited_length(
    registry: Registry, name: str, problem: str
) -> None:
    with pytest.raises(RegistryError, match=re.escape(problem)):
        registry.add_team("alpha", name=name, email="x@x.example")
    registry.add_team("alpha", name="CESNET-CERTS Česko \u200cکشور", email="x@x.example")


@pytest.mark.parametrize(
    "address",
    [
        "cert",
        "cert@alpha",
        "cert@@alpha.example",
        "ce rt@alpha.example",
        "<c@alpha.example>",
        "a@b.example, c@d.example",
        "c@alpha.example\r\nBcc: x@evil.example",
        "c@alpha.x",
        "x" * 250 + "@alpha.example",
    ],
)
def test_bad_addresses_are_refused(registry: Registry, address: str) -> None:
    with pytest.raises(RegistryError, match="address"):
        registry.add_team("alpha", name="X", email=address)
    with pytest.raises(RegistryError):
        check_address(address)


def test_the_longest_handle(registry: Registry) -> None:
    assert registry.add_team("a" * 63, name="X", email="x@x.example").handle == "a" * 63


@pytest.mark.parametrize("status", ["active", "Accredited", ""])
def test_bad_status_is_refused(registry: Registry, status: str) -> None:
    with pytest.raises(RegistryError, match="status"):
        registry.add_team("alpha", name="X", email="x@x.example", status=status)


@pytest.mark.parametrize("country", ["DEU", "D", "1A", "", "d e"])
def test_bad_country_is_refused(registry: Registry, country: str) -> None:
    with pytest.raises(RegistryError, match="country"):
        registry.add_team("alpha", name="X", email="x@x.example", country=country)


def test_duplicate_team_is_refused(app: App, registry: Registry) -> None:
    registry.add_team("alpha", name="Alpha", email="a@alpha.example")
    with pytest.raises(RegistryError, match="exists"):
        registry.add_team("alpha", name="Other", email="b@other.example")
    with open_session(app.engine) as s:
        assert registry.team(s, "alpha").email == "a@alpha.example"


def test_set_status(registry: Registry) -> None:
    registry.add_team("alpha", name="Alpha", email="a@alpha.example")
    assert registry.set_status("alpha", "suspended").status == "suspended"
    with pytest.raises(RegistryError, match="status"):
        registry.set_status("alpha", "gone")
    with pytest.raises(RegistryError, match="no team"):
        registry.set_status("beta", "listed")


# --- keys -----------------------------------------------------------------------------


def test_import_binds_the_key_to_the_team(app: App, registry: Registry, owner: KeyOwner) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    fpr = owner.new_key("cert@alpha.example")
    [imported] = registry.import_keys("alpha", owner.public(fpr))
    assert imported == ImportedKey(fpr, ("Owner <cert@alpha.example>",), None, False, False)
    assert bound_keys(app) == {fpr: "alpha"}
    found = binding(app, fpr.lower())
    assert found == Binding(
        found.team_id if found else 0, "alpha", "accredited", "cert@alpha.example", fpr, False
    )
    assert app.gpg.details(fpr) is not None and app.gpg.details(fpr, secret=True) is None
    with open_session(app.engine) as s:
        row = q.get_key(s, fpr)
        assert row is not None and row.user_ids == "Owner <cert@alpha.example>"
        assert row.created_at is not None and row.expires_at is None


def test_import_binds_every_key_in_the_file(app: App, registry: Registry, owner: KeyOwner) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    first, second = owner.new_key("a@alpha.example"), owner.new_key("b@alpha.example")
    imported = registry.import_keys("alpha", owner.public(first, second))
    assert sorted(k.fingerprint for k in imported) == sorted([first, second])
    assert bound_keys(app) == {first: "alpha", second: "alpha"}


def test_secret_keys_are_refused_and_nothing_is_bound(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    fpr = owner.new_key("cert@alpha.example")
    for data in (owner.secret(fpr), owner.public(fpr) + owner.secret(fpr)):
        with pytest.raises(RegistryError, match="SECRET"):
            registry.import_keys("alpha", data)
    assert bound_keys(app) == {}
    assert app.gpg.details(fpr) is None and app.gpg.details(fpr, secret=True) is None


def test_a_file_without_keys_is_refused(app: App, registry: Registry) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    with pytest.raises(RegistryError, match="no OpenPGP public key"):
        registry.import_keys("alpha", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n")
    assert bound_keys(app) == {}


def test_import_for_an_unknown_team_binds_nothing(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    fpr = owner.new_key("cert@alpha.example")
    with pytest.raises(RegistryError, match="no team"):
        registry.import_keys("alpha", owner.public(fpr))
    assert bound_keys(app) == {} and app.gpg.details(fpr) is None


def test_a_key_bound_to_another_team_is_refused(
    app: App, registry: Registry, make_team: Callable[..., TeamClient]
) -> None:
    alpha = make_team("alpha")
    registry.add_team("beta", name="Beta", email="cert@beta.example")
    with pytest.raises(RegistryError, match="bound to team 'alpha'"):
        registry.import_keys("beta", alpha.gpg.export_public(alpha.fingerprint).encode())
    assert bound_keys(app) == {alpha.fingerprint: "alpha"}
    found = binding(app, alpha.fingerprint)
    assert found is not None and found.handle == "alpha"


def test_one_foreign_key_refuses_the_whole_file(
    app: App, registry: Registry, make_team: Callable[..., TeamClient], owner: KeyOwner
) -> None:
    alpha = make_team("alpha")
    registry.add_team("beta", name="Beta", email="cert@beta.example")
    own = owner.new_key("cert@beta.example")
    data = owner.public(own) + alpha.gpg.export_public(alpha.fingerprint).encode()
    with pytest.raises(RegistryError):
        registry.import_keys("beta", data)
    assert bound_keys(app) == {alpha.fingerprint: "alpha"}


def test_reimport_refreshes_expiry_and_revocation(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    fpr = owner.new_key("cert@alpha.example")
    registry.import_keys("alpha", owner.public(fpr))

    gpg_cli(owner.gpg.home, "--quick-set-expire", fpr, "1y")
    [refreshed] = registry.import_keys("alpha", owner.public(fpr))
    assert refreshed.updated and not refreshed.revoked
    assert refreshed.expires_at is not None
    assert timedelta(days=360) < refreshed.expires_at - datetime.now(UTC) < timedelta(days=370)
    with open_session(app.engine) as s:
        row = q.get_key(s, fpr)
        assert row is not None and row.expires_at == refreshed.expires_at
        assert row.revoked_at is None

    owner.revoke(fpr)
    [revoked] = registry.import_keys("alpha", owner.public(fpr))
    assert revoked.updated and revoked.revoked
    with open_session(app.engine) as s:
        row = q.get_key(s, fpr)
        assert row is not None and row.revoked_at is not None
        assert row.revoke_reason == "revoked by its owner"
    assert bound_keys(app) == {fpr: "alpha"}
    found = binding(app, fpr)
    assert found is not None and found.revoked
    details = registry.key_details(fpr)
    assert details is not None and details.revoked


def test_revoke_key(app: App, registry: Registry, team: TeamClient) -> None:
    row = registry.revoke_key(team.fingerprint.lower(), "lost laptop")
    assert row.revoked_at is not None and row.revoke_reason == "lost laptop"
    assert row.revoked_at.tzinfo is not None
    found = binding(app, team.fingerprint)
    assert found is not None and found.revoked and found.handle == "alpha"
    with pytest.raises(RegistryError, match="no key"):
        registry.revoke_key("0" * 40, None)


def test_reimport_does_not_undo_an_admin_revocation(
    app: App, registry: Registry, team: TeamClient
) -> None:
    registry.revoke_key(team.fingerprint, "compromised")
    with pytest.raises(RegistryError, match=r"stays revoked in the registry .*compromised"):
        registry.import_keys("alpha", team.gpg.export_public(team.fingerprint).encode())
    found = binding(app, team.fingerprint)
    assert found is not None and found.revoked


def test_binding(app: App, team: TeamClient) -> None:
    found = binding(app, team.fingerprint)
    assert found is not None
    assert (found.handle, found.status, found.email, found.fingerprint, found.revoked) == (
        "alpha",
        "accredited",
        team.email,
        team.fingerprint,
        False,
    )
    assert binding(app, team.fingerprint.lower()) == found
    assert binding(app, "0" * 40) is None
    app.registry.set_status("alpha", "suspended")
    after = binding(app, team.fingerprint)
    assert after is not None and after.status == "suspended"


def test_a_subkey_fingerprint_is_not_a_binding(app: App, team: TeamClient) -> None:
    details = app.registry.key_details(team.fingerprint)
    assert details is not None and details.subkeys
    assert binding(app, details.subkeys[0].fingerprint) is None


# --- the key to encrypt replies to ----------------------------------------------------


def test_encryption_key_is_the_team_key(app: App, team: TeamClient) -> None:
    assert encryption_key(app, "alpha") == team.fingerprint


def test_encryption_key_prefers_the_newest_usable_key(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    old = owner.new_key("old@alpha.example", days_ago=30)
    new = owner.new_key("new@alpha.example")
    registry.import_keys("alpha", owner.public(new))  # bound first, but created last
    registry.import_keys("alpha", owner.public(old))
    assert encryption_key(app, "alpha") == new
    registry.revoke_key(new, "rotated")
    assert encryption_key(app, "alpha") == old


def test_no_usable_key_is_none(app: App, registry: Registry, owner: KeyOwner) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    assert encryption_key(app, "alpha") is None
    revoked = owner.new_key("new@alpha.example")
    registry.import_keys("alpha", owner.public(revoked))
    assert encryption_key(app, "alpha") == revoked
    owner.revoke(revoked)
    [again] = registry.import_keys("alpha", owner.public(revoked))  # the owner's revocation
    assert again.revoked and again.usability is not None and not again.usability.usable
    assert encryption_key(app, "alpha") is None


def test_an_expired_key_is_refused(app: App, registry: Registry, owner: KeyOwner) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    expired = owner.new_key("old@alpha.example", days_ago=10, expire="1d")
    with pytest.raises(RegistryError, match=r"expired on .*nothing was imported"):
        registry.import_keys("alpha", owner.public(expired))
    assert bound_keys(app) == {} and app.gpg.details(expired) is None


def _expire_encryption_subkey(owner: KeyOwner, fpr: str) -> str:
    details = owner.gpg.details(fpr)
    assert details is not None
    [sub] = details.subkeys
    # Two seconds on: the new binding signature must be later than the key's own (made in
    # `new_key` ten days ago), or gpg may keep the older one when both fall in one second.
    ten_days_ago = str(int(time.time()) - 10 * 86_400 + 2)
    gpg_cli(
        owner.gpg.home,
        "--faked-system-time",
        ten_days_ago,
        "--quick-set-expire",
        fpr,
        "1d",
        sub.fingerprint,
    )
    return sub.fingerprint


def test_a_key_whose_encryption_subkey_expired_is_refused(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    fpr = owner.new_key("cert@alpha.example", days_ago=10)
    sub = _expire_encryption_subkey(owner, fpr)
    with pytest.raises(
        RegistryError, match=f"be encrypted to: its encryption subkey {sub} expired"
    ):
        registry.import_keys("alpha", owner.public(fpr))
    assert bound_keys(app) == {} and app.gpg.details(fpr) is None


def test_a_bound_key_whose_encryption_subkey_expired_is_refreshed_but_unusable(
    app: App, registry: Registry, owner: KeyOwner
) -> None:
    """The keyring must learn what the owner changed, even when it makes the key unusable."""
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    fpr = owner.new_key("cert@alpha.example", days_ago=10)
    registry.import_keys("alpha", owner.public(fpr))
    assert encryption_key(app, "alpha") == fpr
    _expire_encryption_subkey(owner, fpr)
    [refreshed] = registry.import_keys("alpha", owner.public(fpr))
    assert refreshed.updated and refreshed.usability is not None
    assert not refreshed.usability.can_encrypt and refreshed.usability.can_sign
    primary = registry.key_details(fpr)
    assert primary is not None and primary.expires is None  # the primary is still valid
    assert encryption_key(app, "alpha") is None


def test_a_sign_only_key_is_refused(app: App, registry: Registry, owner: KeyOwner) -> None:
    registry.add_team("alpha", name="Alpha", email="cert@alpha.example")
    gpg_cli(owner.gpg.home, "--quick-gen-key", "S <s@alpha.example>", "ed25519", "sign", "never")
    data = gpg_cli(owner.gpg.home, "--armor", "--export", "<s@alpha.example>")
    with pytest.raises(RegistryError, match="cannot be encrypted to: it has no encryption subkey"):
        registry.import_keys("alpha", data)
    assert bound_keys(app) == {}


# --- coordinators ---------------------------------------------------------------------


def test_add_and_remove_a_coordinator(app: App, registry: Registry, owner: KeyOwner) -> None:
    fpr = owner.new_key("chair@clearinghouse.example")
    coordinator = registry.add_coordinator(
        "Chair@Clearinghouse.Example", owner.public(fpr), name="Chair"
    )
    assert (coordinator.email, coordinator.name, coordinator.fingerprint) == (
        "chair@clearinghouse.example",
        "Chair",
        fpr,
    )
    assert app.gpg.details(fpr) is not None
    assert bound_keys(app) == {}  # a coordinator's key is no team's key
    with pytest.raises(RegistryError, match="exists"):
        registry.add_coordinator("chair@clearinghouse.example", owner.public(fpr))
    registry.remove_coordinator("CHAIR@clearinghouse.example")
    with open_session(app.engine) as s:
        assert q.list_coordinators(s) == []
    with pytest.raises(RegistryError, match="no coordinator"):
        registry.remove_coordinator("chair@clearinghouse.example")


def test_coordinator_key_file_rules(
    app: App, registry: Registry, owner: KeyOwner, team: TeamClient
) -> None:
    one, two = owner.new_key("a@ch.example"), owner.new_key("b@ch.example")
    with pytest.raises(RegistryError, match="holds 2 keys"):
        registry.add_coordinator("a@ch.example", owner.public(one, two))
    with pytest.raises(RegistryError, match="SECRET"):
        registry.add_coordinator("a@ch.example", owner.secret(one))
    with pytest.raises(RegistryError, match="belongs to a team"):
        registry.add_coordinator("a@ch.example", team.gpg.export_public(team.fingerprint).encode())
    with pytest.raises(RegistryError, match="address"):
        registry.add_coordinator("not-an-address", owner.public(one))
    with open_session(app.engine) as s:
        assert q.list_coordinators(s) == []
    assert app.gpg.details(one) is None and app.gpg.details(two) is None


def test_a_coordinators_key_cannot_be_bound_to_a_team(
    app: App, registry: Registry, owner: KeyOwner, team: TeamClient
) -> None:
    fpr = owner.new_key("chair@clearinghouse.example")
    registry.add_coordinator("chair@clearinghouse.example", owner.public(fpr))
    with pytest.raises(RegistryError, match="coordinator"):
        registry.import_keys("alpha", owner.public(fpr))
    assert fpr not in bound_keys(app)
