"""Keys a team can use (docs/reference.md "Keys a team can use"), the gateway key, and `init` again.

Through the CLI, with keys made as teams make them: the gpg command line
(`--quick-gen-key NAME rsa3072 default never` makes a sign-only key on GnuPG 2.2),
python-gnupg, and Sequoia (`pysequoia`) for an OpenPGP v6 key GnuPG 2.2 cannot read.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pysequoia
import pytest
from cli_support import Cli, write_config
from support import INTAKE, config_toml

from gateway.app import App
from keys.gpg import GnuPG


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    ch = Cli(path)
    ch("teams", "add", "cert-x", "--name", "CERT X", "--email", "incidents@cert-x.example")
    return ch


@pytest.fixture
def fresh(tmp_path: Path) -> Cli:
    return Cli(write_config(tmp_path / "fresh.toml", tmp_path / "fresh"))


def gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    cmd += ["--passphrase", "", *args]
    return subprocess.run(cmd, input=data, check=True, capture_output=True).stdout


def fingerprint_of(home: Path, selector: str) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", selector).decode()
    return next(row.split(":")[9] for row in listing.splitlines() if row.startswith("fpr:"))


def export(home: Path, fpr: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{fpr[:8]}-{time.monotonic_ns()}.asc"
    path.write_bytes(gpg(home, "--armor", "--export", fpr))
    return path


def bound(ch: Cli) -> list[str]:
    return [row["fingerprint"] for row in ch.json("keys", "list")]


# --- keys import refuses what the gateway cannot both verify and encrypt to ---------------


def test_a_sign_only_key_as_gpg_quick_gen_key_makes_it_is_refused(
    ch: Cli, app: App, tmp_path: Path
) -> None:
    home = tmp_path / "team"
    uid = "CERT X <incidents@cert-x.example>"
    gpg(home, "--quick-gen-key", uid, "rsa3072", "default", "never")
    fpr = fingerprint_of(home, "<incidents@cert-x.example>")

    refused = ch("keys", "import", "cert-x", str(export(home, fpr, tmp_path)), code=1).stderr

    assert "cannot be encrypted to: it has no encryption subkey (a sign-only key)" in refused
    assert f"gpg --quick-add-key {fpr} cv25519 encr" in refused
    assert "nothing was imported" in refused and bound(ch) == []
    assert app.gpg.details(fpr) is None
    gpg(home, "--quick-add-key", fpr, "cv25519", "encr")  # what the message says to do
    out = ch("keys", "import", "cert-x", str(export(home, fpr, tmp_path))).stdout
    assert f"bound {fpr} to cert-x (usable" in out and bound(ch) == [fpr]


def test_an_expired_encryption_subkey_is_refused(ch: Cli, tmp_path: Path) -> None:
    home = tmp_path / "team"
    ten_days_ago = str(int(time.time()) - 10 * 86_400)
    faked = ["--faked-system-time", ten_days_ago]
    uid = "CERT X <incidents@cert-x.example>"
    gpg(home, *faked, "--quick-gen-key", uid, "future-default", "default", "never")
    fpr = fingerprint_of(home, "<incidents@cert-x.example>")
    sub = GnuPG(home).details(fpr)
    assert sub is not None
    encryption = sub.subkeys[0].fingerprint
    # Two seconds on, so that the new binding signature is later than the key's own.
    later = ["--faked-system-time", str(int(ten_days_ago) + 2)]
    gpg(home, *later, "--quick-set-expire", fpr, "1d", encryption)

    refused = ch("keys", "import", "cert-x", str(export(home, fpr, tmp_path)), code=1).stderr

    assert f"its encryption subkey {encryption} expired on" in refused
    assert f"gpg --quick-set-expire {fpr} 2y {encryption}" in refused and bound(ch) == []


def test_a_revoked_encryption_subkey_is_refused(ch: Cli, tmp_path: Path) -> None:
    home = tmp_path / "team"
    gpg(home, "--quick-gen-key", "X <incidents@cert-x.example>", "future-default", "default")
    fpr = fingerprint_of(home, "<incidents@cert-x.example>")
    commands = b"key 1\nrevkey\ny\n0\n\ny\nsave\n"
    gpg(home, "--command-fd", "0", "--edit-key", fpr, data=commands)

    refused = ch("keys", "import", "cert-x", str(export(home, fpr, tmp_path)), code=1).stderr

    assert "cannot be encrypted to: its encryption subkey" in refused and "is revoked" in refused
    assert bound(ch) == []


def test_an_openpgp_v6_key_is_named_and_the_team_told_what_to_send(ch: Cli, tmp_path: Path) -> None:
    tsk = pysequoia.Tsk.generate(
        "CERT X <incidents@cert-x.example>", profile=pysequoia.Profile.RFC9580
    )
    key_file = tmp_path / "v6.asc"
    key_file.write_text(str(tsk.extract_certificate()))

    refused = ch("keys", "import", "cert-x", str(key_file), code=1).stderr

    assert "an OpenPGP v6 (RFC 9580) key, which the GnuPG this gateway runs cannot read" in refused
    assert "ask the team for an OpenPGP v4 key" in refused and bound(ch) == []


# --- a revoked key stays revoked ----------------------------------------------------------


def test_reimporting_a_revoked_key_says_it_stays_revoked(ch: Cli, tmp_path: Path) -> None:
    team = GnuPG(tmp_path / "team")
    fpr = team.generate_key("CERT X", "incidents@cert-x.example")
    key_file = tmp_path / "x.asc"
    key_file.write_text(team.export_public(fpr))
    ch("keys", "import", "cert-x", str(key_file))
    ch("keys", "revoke", fpr, "--reason", "laptop stolen")

    result = ch("keys", "import", "cert-x", str(key_file), code=1)

    assert "refreshed" not in result.stdout
    assert f"key {fpr} stays revoked in the registry (revoked " in result.stderr
    assert "laptop stolen" in result.stderr and "the team needs a new key" in result.stderr
    [row] = ch.json("keys", "list")
    assert row["revoked_at"] is not None and row["revoke_reason"] == "laptop stolen"


# --- the gateway key ---------------------------------------------------------------------


def _old_gateway_key(tmp_path: Path, uid: str) -> Path:
    home = tmp_path / "old-gateway"
    gpg(home, "--quick-gen-key", uid, "future-default", "default", "never")
    fpr = fingerprint_of(home, uid[uid.index("<") :])
    secret = tmp_path / "old-gateway.asc"
    secret.write_bytes(gpg(home, "--armor", "--export-secret-keys", fpr))
    return secret


def test_gateway_key_import_wants_a_user_id_for_the_gateway_address(
    fresh: Cli, tmp_path: Path
) -> None:
    secret = _old_gateway_key(tmp_path, "Old Clearinghouse <stats@old.example>")

    refused = fresh("gateway-key", "import", str(secret), code=1).stderr

    assert f"has no user ID for gateway_address {INTAKE}" in refused
    assert "Old Clearinghouse <stats@old.example>" in refused and "--any-address" in refused
    fresh("gateway-key", code=1)  # nothing was adopted
    adopted = fresh("gateway-key", "import", str(secret), "--any-address").stdout.strip()
    assert len(adopted) == 40 and fresh("gateway-key").stdout.startswith("-----BEGIN PGP")


def test_init_again_says_the_key_exists_and_is_not_changed(fresh: Cli) -> None:
    first = fresh("init").stdout.strip()
    again = fresh("init", "--name", "Again")
    assert again.stdout.strip() == first
    assert f"already initialised; the gateway key is {first}" in again.stderr
    assert "the gateway key exists and is not changed" in again.stderr
    assert "'Clearinghouse <stats@clearinghouse.example>'" in again.stderr
    shown = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=fresh("gateway-key").stdout.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "Again" not in shown


def test_init_on_a_fresh_database_says_it_reuses_the_key_in_the_home(
    fresh: Cli, tmp_path: Path
) -> None:
    first = fresh("init").stdout.strip()
    (tmp_path / "fresh" / "clearinghouse.db").unlink()  # a new database, the old keyring

    again = fresh("init")

    assert again.stdout.strip() == first
    assert f"reusing the gateway key already in {tmp_path / 'fresh' / 'gnupg'}: {first}" in (
        again.stderr
    )
    [entry] = fresh.json("audit")
    assert entry["action"] == "gateway-key init" and "reused" in entry["details"]
