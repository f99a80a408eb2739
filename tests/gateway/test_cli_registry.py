"""The command line, part 1: configuration, the gateway key and the trust registry.

Commands run in-process with click's CliRunner against a TOML file written per test
(docs/reference.md "Command line"); every key is a real GnuPG key generated in tmp_path. The
message commands (ingest, process, serve, messages, submissions, outbox, demo) are in
test_cli_messages.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_support import Cli, write_config
from support import INTAKE, TeamClient, config_toml

from gateway.app import App
from gateway.config import load_config
from keys.gpg import GnuPG
from store import spool
from store.db import open_session

FPR_LEN = 40


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    """The CLI pointed at the `app` fixture's data directory (same database and keyring)."""
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


@pytest.fixture
def fresh(tmp_path: Path) -> Cli:
    """The CLI pointed at a data directory that does not exist yet."""
    return Cli(write_config(tmp_path / "fresh.toml", tmp_path / "fresh"))


def own_key(tmp_path: Path, handle: str, email: str | None = None) -> tuple[GnuPG, str, Path]:
    """A team's (or coordinator's) own keyring and key; the public key exported to a file."""
    gpg = GnuPG(tmp_path / f"own-{handle}")
    fpr = gpg.generate_key(f"CERT {handle}", email or f"cert@{handle}.example")
    path = tmp_path / f"{handle}.asc"
    path.write_text(gpg.export_public(fpr))
    return gpg, fpr, path


def quick_agent(home: Path) -> Path:
    """A GnuPG home whose agent protects secret keys without its slow S2K calibration."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
    return home


def gpg_cli(home: Path, *args: str, passphrase: str = "") -> bytes:
    quick_agent(home)
    return subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            *args,
        ],
        check=True,
        capture_output=True,
    ).stdout


def export_secret(home: Path, fpr: str, passphrase: str = "") -> bytes:
    return gpg_cli(home, "--armor", "--export-secret-keys", fpr, passphrase=passphrase)


def armored_fingerprint(armored: str) -> str:
    with_colons = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=armored.encode(),
        check=True,
        capture_output=True,
    ).stdout.decode()
    return next(line.split(":")[9] for line in with_colons.splitlines() if line.startswith("fpr"))


# --- configuration ----------------------------------------------------------------------


def test_init_prints_the_fingerprint_and_is_idempotent(fresh: Cli, tmp_path: Path) -> None:
    first = fresh("init").stdout.strip()
    assert len(first) == FPR_LEN and first == first.upper()
    assert int(first, 16)
    assert fresh("init").stdout.strip() == first
    assert (tmp_path / "fresh" / "clearinghouse.db").is_file()
    armored = fresh("gateway-key").stdout
    assert armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert armored.rstrip().endswith("-----END PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in armored
    assert armored_fingerprint(armored) == first


def test_init_takes_name_and_email_for_the_key(fresh: Cli) -> None:
    fresh("init", "--name", "Old Clearinghouse", "--email", "stats@old.example")
    armored = fresh("gateway-key").stdout
    uids = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=armored.encode(),
        check=True,
        capture_output=True,
    ).stdout
    assert b"Old Clearinghouse <stats@old.example>" in uids


def test_gateway_key_before_init_fails_and_says_what_to_do(fresh: Cli) -> None:
    result = fresh("gateway-key", code=1)
    assert "clearinghouse init" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["teams", "list"],
        ["teams", "add", "cert-x", "--name", "CERT X", "--email", "x@cert-x.example"],
        ["messages", "list", "--json"],
        ["process", "--once"],
    ],
)
def test_commands_before_init_say_so_in_one_line(fresh: Cli, args: list[str]) -> None:
    result = fresh(*args, code=1)
    assert result.stderr.startswith("error: ") and "clearinghouse init" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_without_configuration_data_goes_to_var_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEARINGHOUSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    fpr = Cli(None)("init").stdout.strip()
    assert (tmp_path / "var" / "clearinghouse.db").is_file()
    assert (tmp_path / "var" / "gnupg" / "gateway-key.fpr").read_text().strip() == fpr


def test_config_file_and_environment_choose_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    by_env = write_config(tmp_path / "env.toml", tmp_path / "home-env")
    by_option = write_config(tmp_path / "option.toml", tmp_path / "home-option")
    monkeypatch.setenv("CLEARINGHOUSE_CONFIG", str(by_env))
    env_fpr = Cli(None)("init").stdout.strip()
    assert (tmp_path / "home-env" / "gnupg" / "gateway-key.fpr").read_text().strip() == env_fpr
    # --config wins over the environment
    option_fpr = Cli(by_option)("init").stdout.strip()
    assert option_fpr != env_fpr
    assert (tmp_path / "home-option" / "clearinghouse.db").is_file()
    assert not (tmp_path / "var").exists()
    assert Cli(None)("init").stdout.strip() == env_fpr


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('colour = "blue"\n', "'colour'"),
        ('[smtpd]\nlisten = "127.0.0.1:25"\n', "'smtpd'"),
        ('[smtp]\nmax_message_bytes = "big"\n', "max_message_bytes"),
    ],
)
def test_a_bad_configuration_is_a_usage_error_naming_the_key(
    tmp_path: Path, extra: str, named: str
) -> None:
    config = write_config(tmp_path / "bad.toml", tmp_path / "var", extra)
    result = Cli(config)("teams", "list", code=2)
    assert named in result.stderr and "bad.toml" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "var").exists()


def test_a_missing_configuration_file_is_a_usage_error(tmp_path: Path) -> None:
    result = Cli(tmp_path / "nowhere.toml")("teams", "list", code=2)
    assert "nowhere.toml" in result.stderr


def test_unknown_commands_and_options_are_usage_errors(ch: Cli) -> None:
    assert "frobnicate" in ch("frobnicate", code=2).output
    ch("teams", "list", "--colour", code=2)
    ch("teams", code=2)  # a group without its subcommand


# --- gateway-key import -----------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "correct horse battery"])
def test_gateway_key_import_adopts_an_existing_key(
    tmp_path: Path, fresh: Cli, passphrase: str | None
) -> None:
    old_home = tmp_path / "old-gateway"
    quick_agent(tmp_path / "fresh" / "gnupg")  # the gateway keyring, still empty
    gpg_cli(
        old_home,
        "--quick-gen-key",
        f"Old Clearinghouse <{INTAKE}>",
        "future-default",
        "default",
        "0",
        passphrase=passphrase or "",
    )
    listing = gpg_cli(old_home, "--with-colons", "--list-secret-keys").decode()
    old_fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
    key_file = tmp_path / "old-gateway.asc"
    key_file.write_bytes(export_secret(old_home, old_fpr, passphrase or ""))
    args = ["gateway-key", "import", str(key_file)]
    if passphrase is not None:
        (tmp_path / "passphrase").write_text(passphrase + "\n")
        args += ["--passphrase-file", str(tmp_path / "passphrase")]

    assert fresh(*args).stdout.strip() == old_fpr
    assert armored_fingerprint(fresh("gateway-key").stdout) == old_fpr

    # A team that has encrypted to the old key all along keeps doing so, and is accepted;
    # the receipt is signed (unattended, with the stored passphrase) by the same key.
    team_gpg, team_fpr, team_file = own_key(tmp_path, "alpha")
    team_gpg.import_keys(fresh("gateway-key").stdout.encode())
    fresh("teams", "add", "alpha", "--name", "CERT Alpha", "--email", "cert@alpha.example")
    fresh("keys", "import", "alpha", str(team_file))
    client = TeamClient("alpha", "cert@alpha.example", team_gpg, team_fpr, old_fpr)
    fresh("ingest", input=client.submit())
    fresh("process", "--once")
    [message] = fresh.json("messages", "list")
    assert (message["state"], message["reason"], message["team"]) == ("accepted", None, "alpha")
    mails = sorted((tmp_path / "fresh" / "outgoing" / "new").iterdir())
    assert len(mails) == 2  # the welcome (on the team's first key) and the receipt
    for mail in mails:
        body = mail.read_bytes().split(b"\n", 1)[1]  # after the maildir's Delivered-To:
        result = client.decrypt(body)
        assert result.decrypted and result.signatures[0].outcome == "good"
        assert result.signatures[0].primary_fingerprint == old_fpr


def test_gateway_key_import_refuses_what_it_cannot_use(tmp_path: Path, fresh: Cli) -> None:
    old_home = tmp_path / "old-gateway"
    quick_agent(tmp_path / "fresh" / "gnupg")  # the gateway keyring, still empty
    gpg_cli(
        old_home,
        "--quick-gen-key",
        f"Old <{INTAKE}>",
        "future-default",
        "default",
        "0",
        passphrase="right",
    )
    listing = gpg_cli(old_home, "--with-colons", "--list-secret-keys").decode()
    fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
    secret = tmp_path / "secret.asc"
    secret.write_bytes(export_secret(old_home, fpr, "right"))
    public = tmp_path / "public.asc"
    public.write_bytes(gpg_cli(old_home, "--armor", "--export", fpr))
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")

    assert "secret key" in fresh("gateway-key", "import", str(public), code=1).stderr
    fresh("gateway-key", "import", str(secret), "--passphrase-file", str(wrong), code=1)
    fresh("gateway-key", "import", str(secret), code=1)  # protected, no passphrase given
    fresh("gateway-key", "import", str(tmp_path / "missing.asc"), code=2)
    fresh("gateway-key", code=1)  # nothing was adopted


# --- teams ------------------------------------------------------------------------------


def test_teams_add_list_show_and_set_status(ch: Cli) -> None:
    out = ch(
        "teams",
        "add",
        "cert-x",
        "--name",
        "CERT X",
        "--email",
        "Ops@Cert-X.example",
        "--country",
        "de",
    ).stdout
    assert "cert-x" in out and "keys import cert-x" in out
    ch(
        "teams",
        "add",
        "csirt-y",
        "--name",
        "CSIRT Y",
        "--email",
        "y@csirt-y.example",
        "--status",
        "listed",
    )

    assert ch.json("teams", "list") == [
        {
            "handle": "cert-x",
            "name": "CERT X",
            "email": "ops@cert-x.example",
            "status": "accredited",
            "country": "DE",
            "keys": 0,
            "ti": None,  # no link to the TI directory (test_cli_directory.py)
            "directory": None,
        },
        {
            "handle": "csirt-y",
            "name": "CSIRT Y",
            "email": "y@csirt-y.example",
            "status": "listed",
            "country": None,
            "keys": 0,
            "ti": None,
            "directory": None,
        },
    ]
    header, *rows = ch("teams", "list").stdout.splitlines()
    assert header.split() == ["HANDLE", "STATUS", "EMAIL", "COUNTRY", "KEYS", "TI", "NAME"]
    assert rows[0].split() == ["cert-x", "accredited", "ops@cert-x.example", "DE", "0", "CERT", "X"]

    shown = ch.json("teams", "show", "cert-x")
    assert shown["handle"] == "cert-x" and shown["keys"] == []
    assert shown["last_submission_at"] is None and shown["created_at"]
    text = ch("teams", "show", "cert-x").stdout
    assert "ops@cert-x.example" in text and "accredited" in text

    assert "may not submit" in ch("teams", "set-status", "cert-x", "suspended").stdout
    assert ch.json("teams", "show", "cert-x")["status"] == "suspended"
    assert "(may submit)" in ch("teams", "set-status", "csirt-y", "certified").stdout
    assert ch.json("teams", "show", "csirt-y")["status"] == "certified"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["teams", "add", "Bad Handle", "--name", "X", "--email", "x@x.example"], "handle"),
        (["teams", "add", "cert-z", "--name", "Z", "--email", "not-an-address"], "address"),
        (
            ["teams", "add", "cert-z", "--name", "Z", "--email", "z@z.example", "--country", "DEU"],
            "country",
        ),
        (["teams", "add", "alpha", "--name", "A", "--email", "a@a.example"], "exists"),
        (["teams", "show", "nobody"], "no team 'nobody'"),
        (["teams", "set-status", "nobody", "listed"], "no team 'nobody'"),
    ],
)
def test_teams_validation_errors_exit_1_with_a_message(
    ch: Cli, team: TeamClient, args: list[str], says: str
) -> None:
    before = ch.json("teams", "list")
    result = ch(*args, code=1)
    assert result.stderr.startswith("error: ") and says in result.stderr
    assert result.stdout == ""
    assert ch.json("teams", "list") == before


def test_teams_bad_status_or_missing_option_is_a_usage_error(ch: Cli, team: TeamClient) -> None:
    assert "bogus" in ch("teams", "set-status", "alpha", "bogus", code=2).stderr
    ch("teams", "add", "beta", "--name", "B", "--email", "b@b.example", "--status", "gold", code=2)
    ch("teams", "add", "beta", "--name", "B", code=2)  # --email is required
    assert [t["handle"] for t in ch.json("teams", "list")] == ["alpha"]
    assert ch.json("teams", "show", "alpha")["status"] == "accredited"


# --- keys -------------------------------------------------------------------------------


def test_keys_import_prints_fingerprint_and_user_ids(ch: Cli, tmp_path: Path) -> None:
    ch("teams", "add", "beta", "--name", "CERT Beta", "--email", "cert@beta.example")
    _, fpr, key_file = own_key(tmp_path, "beta")
    out = ch("keys", "import", "beta", str(key_file)).stdout
    assert f"bound {fpr} to beta (usable; nothing in it expires)" in out
    assert "CERT beta <cert@beta.example>" in out

    [row] = ch.json("keys", "list")
    assert row == {
        "team": "beta",
        "fingerprint": fpr,
        "user_ids": ["CERT beta <cert@beta.example>"],
        "expires_at": None,
        "revoked_at": None,
        "revoke_reason": None,
    }
    header, line = ch("keys", "list").stdout.splitlines()
    assert header.split() == ["FINGERPRINT", "TEAM", "EXPIRES_AT", "REVOKED_AT", "USER_IDS"]
    assert line.startswith(fpr) and line.endswith("CERT beta <cert@beta.example>")
    assert ch.json("teams", "show", "beta")["keys"][0]["fingerprint"] == fpr
    assert ch.json("teams", "list")[0]["keys"] == 1


def test_keys_import_refuses_a_secret_key_and_binds_nothing(
    ch: Cli, app: App, tmp_path: Path
) -> None:
    ch("teams", "add", "beta", "--name", "CERT Beta", "--email", "cert@beta.example")
    gpg, fpr, _ = own_key(tmp_path, "beta")
    secret = tmp_path / "beta-secret.asc"
    secret.write_bytes(export_secret(gpg.home, fpr))
    result = ch("keys", "import", "beta", str(secret), code=1)
    assert "SECRET" in result.stderr and "gpg --export" in result.stderr
    assert ch.json("keys", "list") == []
    assert ch.json("teams", "show", "beta")["keys"] == []
    assert app.gpg.details(fpr) is None and app.gpg.details(fpr, secret=True) is None


def test_keys_import_errors(ch: Cli, tmp_path: Path) -> None:
    _, _, key_file = own_key(tmp_path, "beta")
    assert "no team 'beta'" in ch("keys", "import", "beta", str(key_file), code=1).stderr
    junk = tmp_path / "junk.asc"
    junk.write_text("this is not a key\n")
    ch("teams", "add", "beta", "--name", "CERT Beta", "--email", "cert@beta.example")
    assert "no OpenPGP public key" in ch("keys", "import", "beta", str(junk), code=1).stderr
    ch("keys", "import", "beta", str(tmp_path / "missing.asc"), code=2)
    assert ch.json("keys", "list") == []


def test_a_key_bound_to_one_team_cannot_be_bound_to_another(
    ch: Cli, team: TeamClient, tmp_path: Path
) -> None:
    ch("teams", "add", "beta", "--name", "CERT Beta", "--email", "cert@beta.example")
    key_file = tmp_path / "alpha.asc"
    key_file.write_text(team.gpg.export_public(team.fingerprint))
    result = ch("keys", "import", "beta", str(key_file), code=1)
    assert team.fingerprint in result.stderr and "'alpha'" in result.stderr
    assert [(k["team"], k["fingerprint"]) for k in ch.json("keys", "list")] == [
        ("alpha", team.fingerprint)
    ]
    assert ch.json("teams", "show", "beta")["keys"] == []


def test_keys_import_again_refreshes_the_key(ch: Cli, team: TeamClient, tmp_path: Path) -> None:
    gpg_cli(
        team.gpg.home, "--quick-add-uid", team.fingerprint, "CERT Alpha Ops <ops@alpha.example>"
    )
    key_file = tmp_path / "alpha-updated.asc"
    key_file.write_text(team.gpg.export_public(team.fingerprint))
    out = ch("keys", "import", "alpha", str(key_file)).stdout
    assert f"refreshed {team.fingerprint} to alpha" in out
    assert "CERT Alpha Ops <ops@alpha.example>" in out
    [row] = ch.json("keys", "list")
    assert sorted(row["user_ids"]) == [
        "CERT Alpha Ops <ops@alpha.example>",
        "CERT alpha <cert@alpha.example>",
    ]


def test_keys_revoke_makes_the_next_submission_quarantined(
    ch: Cli, app: App, team: TeamClient
) -> None:
    out = ch("keys", "revoke", team.fingerprint.lower(), "--reason", "laptop stolen").stdout
    assert f"revoked {team.fingerprint}" in out and "key-revoked" in out
    [row] = ch.json("keys", "list")
    assert row["revoked_at"] is not None and row["revoke_reason"] == "laptop stolen"
    assert "no key" in ch("keys", "revoke", "0" * 40, code=1).stderr

    assert ch("ingest", input=team.submit()).stdout == "stored as message 1\n"
    ch("process", "--once")
    [message] = ch.json("messages", "list")
    assert (message["state"], message["reason"]) == ("quarantined", "key-revoked")
    assert ch.json("submissions", "list") == []
    with open_session(app.engine) as s:
        stored = spool.get_message(s, 1)
        assert stored is not None and stored.state == "quarantined"


# --- coordinators -----------------------------------------------------------------------


def test_coordinators_add_list_remove(ch: Cli, app: App, tmp_path: Path) -> None:
    _, fpr, key_file = own_key(tmp_path, "coord", "coord@clearinghouse.example")
    out = ch(
        "coordinators",
        "add",
        "Coord@Clearinghouse.example",
        "--key",
        str(key_file),
        "--name",
        "The Coordinator",
    ).stdout
    assert out.strip() == f"coordinator coord@clearinghouse.example added with key {fpr}"
    assert ch.json("coordinators", "list") == [
        {"email": "coord@clearinghouse.example", "name": "The Coordinator", "fingerprint": fpr}
    ]
    header, line = ch("coordinators", "list").stdout.splitlines()
    assert header.split() == ["EMAIL", "NAME", "FINGERPRINT"]
    assert line.split() == ["coord@clearinghouse.example", "The", "Coordinator", fpr]
    assert app.gpg.details(fpr) is not None  # in the keyring, to encrypt summaries to

    assert (
        "exists"
        in ch(
            "coordinators", "add", "coord@clearinghouse.example", "--key", str(key_file), code=1
        ).stderr
    )
    assert "removed" in ch("coordinators", "remove", "coord@clearinghouse.example").stdout
    assert ch.json("coordinators", "list") == []
    assert ch("coordinators", "list").stdout.strip() == "(none)"
    assert (
        "no coordinator"
        in ch("coordinators", "remove", "coord@clearinghouse.example", code=1).stderr
    )


def test_coordinators_add_errors(ch: Cli, team: TeamClient, tmp_path: Path) -> None:
    team_file = tmp_path / "alpha.asc"
    team_file.write_text(team.gpg.export_public(team.fingerprint))
    assert (
        "belongs to a team"
        in ch(
            "coordinators", "add", "c@clearinghouse.example", "--key", str(team_file), code=1
        ).stderr
    )
    _, _, key_file = own_key(tmp_path, "coord")
    assert "address" in ch("coordinators", "add", "nobody", "--key", str(key_file), code=1).stderr
    ch("coordinators", "add", "c@clearinghouse.example", code=2)  # --key is required
    assert ch.json("coordinators", "list") == []


def test_the_app_fixture_and_the_config_file_agree(ch: Cli, app: App, tmp_path: Path) -> None:
    # The premise of the `ch` fixture: the TOML file rebuilds the fixture's configuration.
    assert ch.config is not None and app.config == load_config(ch.config)
    assert ch("init").stdout.strip() == app.identity.fingerprint
