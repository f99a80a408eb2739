"""keys/identity.py: create the gateway key once; adopt an existing secret key, or refuse it.

Keys to adopt are made with the gpg command line in a separate home, as an operator
moving an existing clearinghouse to this gateway would bring them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contract.errors import GnuPGError, RegistryError
from keys.gpg import GnuPG
from keys.identity import (
    FPR_FILE,
    PASSPHRASE_FILE,
    GatewayIdentity,
    create_identity,
    import_identity,
    load_identity,
)

GATEWAY = "stats@clearinghouse.example"
# Speed only: gpg-agent otherwise calibrates passphrase hashing to ~100 ms per use, and
# re-protects an imported key with it; /bin/false as pinentry makes "no passphrase given"
# fail at once instead of depending on which pinentry the machine has.
AGENT_CONF = "s2k-count 65536\npinentry-program /bin/false\n"


def home(path: Path) -> Path:
    path.mkdir(mode=0o700)
    (path / "gpg-agent.conf").write_text(AGENT_CONF)
    return path


def gpg_cli(path: Path, *args: str, passphrase: str = "") -> bytes:
    batch = ["--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase]
    cmd = ["gpg", "--homedir", str(path), *batch, *args]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def existing_key(path: Path, uid: str, passphrase: str = "") -> tuple[str, bytes]:
    """Generate a key (ed25519 + cv25519) in `path`; return it as an armored secret export."""
    gpg_cli(
        path, "--quick-gen-key", uid, "future-default", "default", "never", passphrase=passphrase
    )
    return _export(path, uid, passphrase)


def _export(path: Path, uid: str, passphrase: str) -> tuple[str, bytes]:
    listing = gpg_cli(path, "--with-colons", "--list-secret-keys", uid).decode()
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return fpr, gpg_cli(path, "--armor", "--export-secret-keys", fpr, passphrase=passphrase)


def secret_keys(gpg: GnuPG) -> list[str]:
    listing = gpg_cli(gpg.home, "--with-colons", "--list-secret-keys").decode()
    rows = [line.split(":") for line in listing.splitlines()]
    return [rows[i + 1][9] for i, row in enumerate(rows) if row[0] == "sec"]


@pytest.fixture
def gateway(tmp_path: Path) -> GnuPG:
    return GnuPG(home(tmp_path / "gateway"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return home(tmp_path / "old-server")


def can_sign_and_decrypt(gpg: GnuPG, identity: GatewayIdentity) -> bool:
    fpr, passphrase = identity.fingerprint, identity.passphrase
    result = gpg.decrypt(gpg.sign_encrypt(b"probe", [fpr], fpr, passphrase).encode(), passphrase)
    return result.clean and [s.primary_fingerprint for s in result.signatures] == [fpr]


# --- create and load ------------------------------------------------------------------


def test_create_is_idempotent(gateway: GnuPG) -> None:
    first = create_identity(gateway, "Clearinghouse", GATEWAY)
    again = create_identity(gateway, "Another Name", "other@clearinghouse.example")
    assert again == first == GatewayIdentity(first.fingerprint, None)
    assert secret_keys(gateway) == [first.fingerprint]
    assert load_identity(gateway) == first
    fpr_file = gateway.home / FPR_FILE
    assert fpr_file.read_text() == first.fingerprint + "\n"
    assert fpr_file.stat().st_mode & 0o777 == 0o600
    details = gateway.details(first.fingerprint)
    assert details is not None and details.user_ids == (f"Clearinghouse <{GATEWAY}>",)
    assert can_sign_and_decrypt(gateway, first)


def test_load_without_a_key(gateway: GnuPG) -> None:
    with pytest.raises(GnuPGError, match="clearinghouse init"):
        load_identity(gateway)


# --- import ---------------------------------------------------------------------------


def test_import_a_key_without_passphrase(gateway: GnuPG, source: Path) -> None:
    fpr, data = existing_key(source, f"Old Clearinghouse <{GATEWAY}>")
    identity = import_identity(gateway, data, None)
    assert identity == GatewayIdentity(fpr, None)
    assert load_identity(gateway) == identity
    assert not (gateway.home / PASSPHRASE_FILE).exists()
    assert can_sign_and_decrypt(gateway, identity)


def test_import_a_key_with_passphrase(gateway: GnuPG, source: Path) -> None:
    fpr, data = existing_key(source, f"Old Clearinghouse <{GATEWAY}>", passphrase="s3cret pass")
    assert gateway.contains_secret(data)
    identity = import_identity(gateway, data, "s3cret pass")
    assert identity == GatewayIdentity(fpr, "s3cret pass")
    stored = gateway.home / PASSPHRASE_FILE
    assert stored.read_text() == "s3cret pass"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert load_identity(gateway) == identity
    assert can_sign_and_decrypt(gateway, identity)


def test_import_replaces_a_created_key_and_drops_a_stale_passphrase(
    gateway: GnuPG, source: Path, tmp_path: Path
) -> None:
    created = create_identity(gateway, "Clearinghouse", GATEWAY)
    fpr, protected = existing_key(source, "Protected <a@clearinghouse.example>", passphrase="pw")
    assert import_identity(gateway, protected, "pw").fingerprint == fpr != created.fingerprint
    assert load_identity(gateway) == GatewayIdentity(fpr, "pw")
    other, plain = existing_key(home(tmp_path / "third"), "Plain <b@clearinghouse.example>")
    assert import_identity(gateway, plain, None) == GatewayIdentity(other, None)
    assert not (gateway.home / PASSPHRASE_FILE).exists()
    assert load_identity(gateway) == GatewayIdentity(other, None)


@pytest.mark.parametrize("given", ["wrong", None])
def test_a_protected_key_without_its_passphrase_is_refused(
    gateway: GnuPG, source: Path, given: str | None
) -> None:
    created = create_identity(gateway, "Clearinghouse", GATEWAY)
    _, data = existing_key(source, f"Old <{GATEWAY}>", passphrase="right")
    with pytest.raises(RegistryError):
        import_identity(gateway, data, given)
    assert load_identity(gateway) == created  # the identity in use is unchanged
    assert not (gateway.home / PASSPHRASE_FILE).exists()


def test_a_wrong_passphrase_adopts_nothing_on_a_fresh_gateway(gateway: GnuPG, source: Path) -> None:
    _, data = existing_key(source, f"Old <{GATEWAY}>", passphrase="right")
    with pytest.raises(RegistryError):
        import_identity(gateway, data, "wrong")
    assert not (gateway.home / FPR_FILE).exists()
    with pytest.raises(GnuPGError):
        load_identity(gateway)


def test_a_public_key_is_refused(gateway: GnuPG, source: Path) -> None:
    fpr, _ = existing_key(source, f"Old <{GATEWAY}>")
    public = gpg_cli(source, "--armor", "--export", fpr)
    with pytest.raises(RegistryError, match="exactly one secret key, found 0"):
        import_identity(gateway, public, None)
    assert gateway.details(fpr) is None  # nothing imported
    assert not (gateway.home / FPR_FILE).exists()


def test_two_secret_keys_are_refused(gateway: GnuPG, source: Path) -> None:
    first, _ = existing_key(source, "One <one@clearinghouse.example>")
    second, _ = existing_key(source, "Two <two@clearinghouse.example>")
    both = gpg_cli(source, "--armor", "--export-secret-keys", first, second)
    with pytest.raises(RegistryError, match="exactly one secret key, found 2"):
        import_identity(gateway, both, None)
    assert gateway.details(first) is None and gateway.details(second) is None
    assert not (gateway.home / FPR_FILE).exists()


def test_garbage_is_refused(gateway: GnuPG) -> None:
    with pytest.raises(RegistryError, match="found 0"):
        import_identity(gateway, b"not a key\n", None)
