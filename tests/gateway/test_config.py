"""Configuration: defaults, derivation from home, validation, unknown keys, example file."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.errors import (
    ClearinghouseError,
    ConfigError,
    DeliveryError,
    GnuPGError,
    StorageError,
)
from gateway.addresses import RelayURL, parse_relay_url, split_host_port
from gateway.config import (
    TEAM_STATUSES,
    Config,
    CoreConfig,
    ImapConfig,
    SmtpConfig,
    config_from_mapping,
    default_config,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "clearinghouse.example.toml"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths resolve against the cwd: make that a fresh directory per test."""
    monkeypatch.chdir(tmp_path)


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert "clearinghouse.toml" in message  # every message names the file
    return message


# --- defaults and derivation -------------------------------------------------------------


def test_no_file_means_spec_defaults_under_cwd_var(tmp_path: Path) -> None:
    config = load_config(None)
    var = tmp_path / "var"
    assert config.core == CoreConfig(
        name="Clearinghouse",
        home=var,
        database_url=f"sqlite:///{var}/clearinghouse.db",
        intake_addresses=("stats@clearinghouse.example",),
        gateway_address="stats@clearinghouse.example",
    )
    assert config.clearinghouse is config.core
    assert (config.smtp.host, config.smtp.port) == ("127.0.0.1", 2525)
    assert config.smtp.max_message_bytes == 10485760 and config.smtp.max_recipients == 10
    assert config.smtp.tls_cert is None and not config.smtp.require_starttls
    assert not config.imap.enabled and config.imap.port == 993 and config.imap.security == "tls"
    assert config.outbound.transport == "maildir" and config.outbound.maildir == var / "outgoing"
    assert config.outbound.relay == "smtp://127.0.0.1:25" and config.outbound.max_attempts == 12
    assert config.policy.allowed_statuses == ("accredited", "certified")
    assert config.policy.sender_binding == "domain" and config.policy.require_encryption
    assert config.reports.output_dir == var / "reports" and config.reports.day_of_month == 5
    assert config.publication.site_dir == var / "site" and config.publication.base_url == ""
    assert config.limits.max_decrypted_bytes == 26214400 and config.limits.max_mime_depth == 16
    assert config.taxonomy.extra_file is None and config.taxonomy.canonical == "ecsirt-v2"
    assert config.registry.welcome_on_first_key and config.registry.ti_max_age_days == 3
    assert config.registry.ti_max_bytes == 8388608
    assert config.gnupg_home == var / "gnupg"


def test_empty_file_equals_no_file(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == load_config(None)


def test_default_config_is_rooted_at_the_given_home(tmp_path: Path) -> None:
    config = default_config(Path("elsewhere"))
    home = tmp_path / "elsewhere"
    assert config.core.home == home
    assert config.core.database_url == f"sqlite:///{home}/clearinghouse.db"
    assert config.outbound.maildir == home / "outgoing"
    assert config.reports.output_dir == home / "reports"
    assert config.publication.site_dir == home / "site"
    assert config.gnupg_home == home / "gnupg"


def test_home_given_derives_database_maildir_and_reports(tmp_path: Path) -> None:
    config = _load(tmp_path, '[clearinghouse]\nhome = "/srv/ch"\n')
    assert config.core.database_url == "sqlite:////srv/ch/clearinghouse.db"
    assert config.outbound.maildir == Path("/srv/ch/outgoing")
    assert config.reports.output_dir == Path("/srv/ch/reports")
    assert config == default_config(Path("/srv/ch"))


def test_explicit_values_are_not_derived(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[clearinghouse]\nhome = "/srv/ch"\n'
        'database_url = "postgresql+psycopg://ch@db.example/ch"\n'
        '[outbound]\nmaildir = "/var/mail/out"\n[reports]\noutput_dir = "pub"\n',
    )
    assert config.core.database_url == "postgresql+psycopg://ch@db.example/ch"
    assert config.outbound.maildir == Path("/var/mail/out")
    assert config.reports.output_dir == tmp_path / "pub"


def test_relative_paths_resolve_against_cwd(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text("", encoding="utf-8")  # read at load: see below
    config = _load(
        tmp_path,
        '[clearinghouse]\nhome = "data/../state"\n'
        '[smtp]\ntls_cert = "c.pem"\ntls_key = "k.pem"\n[taxonomy]\nextra_file = "t.toml"\n',
    )
    assert config.core.home == tmp_path / "state"
    assert config.smtp.tls_cert == tmp_path / "c.pem"
    assert config.taxonomy.extra_file == tmp_path / "t.toml"


def test_publication_site_and_base_url(tmp_path: Path) -> None:
    config = _load(
        tmp_path, '[publication]\nsite_dir = "public"\nbase_url = "https://stats.example/ch/"\n'
    )
    assert config.publication.site_dir == tmp_path / "public"
    assert config.publication.base_url == "https://stats.example/ch/"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///db/ch.db", "sqlite:///{cwd}/db/ch.db"),
        ("sqlite+pysqlite:///ch.db?timeout=5", "sqlite+pysqlite:///{cwd}/ch.db?timeout=5"),
        ("sqlite:////abs/ch.db", "sqlite:////abs/ch.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://u:p@host/db", "postgresql://u:p@host/db"),
    ],
)
def test_relative_sqlite_urls_resolve_against_cwd(
    tmp_path: Path, given: str, expected: str
) -> None:
    config = _load(tmp_path, f'[clearinghouse]\ndatabase_url = "{given}"\n')
    assert config.core.database_url == expected.format(cwd=tmp_path)


def test_sections_are_frozen() -> None:
    config = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.smtp.listen = "0.0.0.0:25"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:2525", "127.0.0.1", 2525),
        ("[::1]:25", "::1", 25),
        ("mx.example:0", "mx.example", 0),
    ],
)
def test_listen_host_and_port(listen: str, host: str, port: int) -> None:
    assert (SmtpConfig(listen=listen).host, SmtpConfig(listen=listen).port) == (host, port)
    assert split_host_port(listen) == (host, port)


def test_imap_enabled_by_host_and_password_file_read(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    config = _load(
        tmp_path, '[imap]\nhost = "imap.example"\nusername = "u"\npassword_file = "pw"\n'
    )
    assert config.imap.enabled
    assert config.imap.read_password() == "s3cret"


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password_file"):
        ImapConfig(password_file=tmp_path / "missing").read_password()
    with pytest.raises(ConfigError, match="password_file"):
        ImapConfig().read_password()


# --- the example file --------------------------------------------------------------------


def test_example_file_loads_and_equals_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE.parent)  # its relative paths are relative to its directory
    assert load_config(EXAMPLE) == load_config(None)


def test_relative_paths_in_a_file_are_relative_to_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same file means the same data directory from wherever a command runs.
    (tmp_path / "etc").mkdir()
    config_file = tmp_path / "etc" / "clearinghouse.toml"
    config_file.write_text(
        '[clearinghouse]\nhome = "data"\n[reports]\noutput_dir = "../out"\n'
        '[imap]\npassword_file = "imap.pw"\n'
    )
    seen = []
    for cwd in (tmp_path, tmp_path / "etc", Path("/")):
        monkeypatch.chdir(cwd)
        seen.append(load_config(config_file))
    assert seen[0] == seen[1] == seen[2]
    config = seen[0]
    assert config.core.home == tmp_path / "etc" / "data"
    assert config.core.database_url == f"sqlite:///{tmp_path}/etc/data/clearinghouse.db"
    assert config.reports.output_dir == tmp_path / "out"
    assert config.imap.password_file == tmp_path / "etc" / "imap.pw"
    assert config.outbound.maildir == tmp_path / "etc" / "data" / "outgoing"
    config_file.write_text('[clearinghouse]\nhome = "data"\ndatabase_url = "sqlite:///db/ch.db"\n')
    assert load_config(config_file).core.database_url == f"sqlite:///{tmp_path}/etc/db/ch.db"


def test_example_file_lists_every_key() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = load_config(None)
    sections = {"clearinghouse": config.core} | {
        name: getattr(config, name) for name in example if name != "clearinghouse"
    }
    assert set(example) == {"clearinghouse", *(f.name for f in dataclasses.fields(Config))} - {
        "core"
    }
    for name, section in sections.items():
        assert set(example[name]) == {f.name for f in dataclasses.fields(section)}, name


# --- refusals ----------------------------------------------------------------------------


def test_unknown_section(tmp_path: Path) -> None:
    message = _error(tmp_path, "[smpt]\nlisten = '127.0.0.1:25'\n")
    assert "unknown section 'smpt'" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert "unknown top-level key 'name'" in _error(tmp_path, 'name = "x"\n')


def test_unknown_key(tmp_path: Path) -> None:
    message = _error(tmp_path, "[smtp]\nmax_message_size = 10\n")
    assert "unknown key 'max_message_size' in [smtp]" in message
    assert "max_message_bytes" in message  # the known keys are listed


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert "[smtp] must be a table, found an integer (3)" in _error(tmp_path, "smtp = 3\n")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(tmp_path, "[smtp\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[smtp]\nmax_message_bytes = true",
            "[smtp] max_message_bytes: expected an integer, found a boolean (true)",
        ),
        ("[smtp]\nmax_message_bytes = '10'", "expected an integer, found a string ('10')"),
        ("[smtp]\nmax_message_bytes = 1.5", "expected an integer, found a float (1.5)"),
        (
            "[smtp]\nrequire_starttls = 1",
            "[smtp] require_starttls: expected a boolean (true or false), found an integer (1)",
        ),
        ("[imap]\nidle = 'yes'", "expected a boolean (true or false), found a string ('yes')"),
        (
            "[clearinghouse]\nname = 7",
            "[clearinghouse] name: expected a string, found an integer (7)",
        ),
        (
            "[clearinghouse]\nhome = ''",
            "[clearinghouse] home: expected a non-empty path, found a string ('')",
        ),
        ("[clearinghouse]\nhome = []", "home: expected a non-empty path, found an array"),
        ("[smtp]\ntls_cert = false", 'tls_cert: expected a path ("" for none), found a boolean'),
        (
            "[clearinghouse]\nintake_addresses = 'a@b.example'",
            "intake_addresses: expected an array, found a string",
        ),
        (
            "[clearinghouse]\nintake_addresses = ['a@b.example', 3]",
            "intake_addresses: expected an array whose items are a string, "
            "found an integer (3) as item 2",
        ),
        (
            "[policy]\nallowed_statuses = ['accredited', 'gold']",
            "allowed_statuses: expected an array whose items are one of 'listed', "
            "'accredited', 'certified', 'suspended', found a string ('gold') as item 2",
        ),
        (
            "[outbound]\ntransport = 'mbox'",
            "[outbound] transport: expected one of 'maildir', 'smtp', found a string ('mbox')",
        ),
        ("[imap]\nsecurity = 'ssl'", "[imap] security: expected one of 'tls', 'starttls', 'none'"),
        (
            "[policy]\nsender_binding = 'strict'",
            "[policy] sender_binding: expected one of 'off', 'domain', 'address'",
        ),
        (
            "[reports]\nday_of_month = 1979-05-27",
            "expected an integer, found a date/time (1979-05-27)",
        ),
        ("[limits]\nmax_mime_parts = {a = 1}", "expected an integer, found a table"),
    ],
)
def test_wrong_types_name_key_expected_and_found(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text + "\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[clearinghouse]\nname = ' '", "[clearinghouse] name: must not be empty"),
        (
            "[clearinghouse]\ndatabase_url = 'var/ch.db'",
            "[clearinghouse] database_url: expected an SQLAlchemy URL",
        ),
        (
            "[clearinghouse]\nintake_addresses = []",
            "[clearinghouse] intake_addresses: must list at least one address",
        ),
        (
            "[clearinghouse]\nintake_addresses = ['Stats <s@x.example>']",
            "intake_addresses: 'Stats <s@x.example>' is not local@domain",
        ),
        (
            "[clearinghouse]\ngateway_address = 'stats'",
            "[clearinghouse] gateway_address: 'stats' is not local@domain",
        ),
        ("[smtp]\nlisten = '2525'", "[smtp] listen: expected HOST:PORT"),
        ("[smtp]\nlisten = '127.0.0.1:70000'", "[smtp] listen: expected HOST:PORT"),
        ("[smtp]\nlisten = '::1:25'", "[smtp] listen: expected HOST:PORT"),
        ("[smtp]\ntls_cert = 'c.pem'", "[smtp] tls_key: tls_cert and tls_key must be set together"),
        ("[smtp]\nrequire_starttls = true", "[smtp] require_starttls: needs tls_cert and tls_key"),
        ("[smtp]\nmax_message_bytes = 0", "[smtp] max_message_bytes: must be at least 1, found 0"),
        ("[smtp]\nmax_recipients = -1", "[smtp] max_recipients: must be at least 1, found -1"),
        ("[imap]\nport = 0", "[imap] port: must be 1..65535, found 0"),
        (
            "[imap]\nhost = 'imap.example'\nsecurity = 'none'\nusername = 'u'\npassword_file = 'p'",
            '[imap] security: "none" is allowed only for a loopback host',
        ),
        (
            "[imap]\nhost = 'imap.example'",
            "[imap] username: an IMAP host needs username and password_file",
        ),
        ("[imap]\nfolder = ''", "[imap] folder: must not be empty"),
        ("[imap]\npoll_seconds = 0", "[imap] poll_seconds: must be at least 1"),
        ("[outbound]\nrelay = 'lmtp://x'", "[outbound] relay: expected smtp:// or smtps://"),
        (
            "[outbound]\nrelay = 'smtp://h.example:0'",
            "[outbound] relay: expected smtp[s]://[user:pass@]host[:port]",
        ),
        ("[outbound]\nmax_attempts = 0", "[outbound] max_attempts: must be at least 1"),
        (
            "[policy]\nmax_signature_age_days = 0",
            "[policy] max_signature_age_days: must be at least 1",
        ),
        ("[reports]\nday_of_month = 29", "[reports] day_of_month: must be 1..28, found 29"),
        ("[reports]\nday_of_month = 0", "[reports] day_of_month: must be 1..28, found 0"),
        (
            "[reports]\nmin_teams_for_public = 0",
            "[reports] min_teams_for_public: must be at least 1",
        ),
        (
            "[publication]\nbase_url = 'stats.example/ch'",
            "[publication] base_url: must be empty or an http(s) URL, found 'stats.example/ch'",
        ),
        ("[publication]\nsite_dir = ''", "[publication] site_dir: expected a non-empty path"),
        ("[limits]\nmax_decrypted_bytes = 0", "[limits] max_decrypted_bytes: must be at least 1"),
        ("[limits]\nmax_mime_depth = 0", "[limits] max_mime_depth: must be at least 1"),
        (
            "[limits]\nsignature_future_skew_minutes = -5",
            "[limits] signature_future_skew_minutes: must be at least 0",
        ),
        ("[registry]\nti_max_age_days = 0", "[registry] ti_max_age_days: must be at least 1"),
        ("[registry]\nti_max_bytes = 0", "[registry] ti_max_bytes: must be at least 1"),
        (
            "[registry]\nwelcome_on_first_key = 'yes'",
            "[registry] welcome_on_first_key: expected a boolean",
        ),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text + "\n")


def test_canonical_taxonomy_is_one_of_the_shipped_vocabularies(tmp_path: Path) -> None:
    assert _load(tmp_path, '[taxonomy]\ncanonical = "rsit-1.3"\n').taxonomy.canonical == (
        "rsit-1.3"
    )
    message = _error(tmp_path, '[taxonomy]\ncanonical = "rsit"\n')
    assert "[taxonomy] canonical: must be one of ecsirt-v2, rsit-1.3, found 'rsit'" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "t.toml: cannot read: No such file or directory"),
        ("[[klass]]\n", "t.toml: unknown section(s) ['klass']"),
        ("[[class]]\nslug = 'x'\n", "name must be a non-empty string"),
        ("[[class\n", "t.toml: Expected ']]' at the end of an array declaration"),
    ],
)
def test_a_broken_taxonomy_file_is_refused_at_load(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    """Not at the first report or the monthly run that reads it (issue 16)."""
    if content is not None:
        (tmp_path / "t.toml").write_text(content, encoding="utf-8")
    message = _error(tmp_path, '[taxonomy]\nextra_file = "t.toml"\n')
    assert "[taxonomy] extra_file: " in message and expected in message
    assert 'set extra_file = ""' in message


def test_relay_password_never_appears_in_errors(tmp_path: Path) -> None:
    message = _error(tmp_path, "[outbound]\nrelay = 'smtp://u:hunter2@h.example/path'\n")
    assert "hunter2" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_imap_without_tls_is_fine_on_loopback(tmp_path: Path, host: str) -> None:
    config = _load(
        tmp_path,
        f'[imap]\nhost = "{host}"\nsecurity = "none"\nusername = "u"\npassword_file = "p"\n',
    )
    assert config.imap.security == "none"


def test_every_team_status_may_be_allowed(tmp_path: Path) -> None:
    statuses = ", ".join(f'"{s}"' for s in TEAM_STATUSES)
    config = _load(tmp_path, f"[policy]\nallowed_statuses = [{statuses}]\n")
    assert config.policy.allowed_statuses == TEAM_STATUSES


# --- relay URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("smtp://127.0.0.1:25", RelayURL(False, "127.0.0.1", 25)),
        ("smtp://relay.example", RelayURL(False, "relay.example", 25)),
        ("smtps://relay.example", RelayURL(True, "relay.example", 465)),
        ("smtp://[::1]:587/", RelayURL(False, "::1", 587)),
        ("smtp://u%40x:p%3Aw@r.example:587", RelayURL(False, "r.example", 587, "u@x", "p:w")),
    ],
)
def test_parse_relay_url(url: str, parsed: RelayURL) -> None:
    assert parse_relay_url(url) == parsed


def test_relay_url_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(parse_relay_url("smtp://u:hunter2@h.example"))


# --- robustness and the exception tree ---------------------------------------------------

_toml_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.lists(st.integers(), max_size=3),
)
_keys = [
    (section, f.name)
    for section, cls in typing.get_type_hints(Config).items()
    for f in dataclasses.fields(cls)
]


@given(key=st.sampled_from(_keys), value=_toml_values)
def test_any_value_either_loads_or_is_a_config_error(key: tuple[str, str], value: object) -> None:
    section = "clearinghouse" if key[0] == "core" else key[0]
    try:
        config = config_from_mapping({section: {key[1]: value}}, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
    else:
        assert isinstance(config, Config)


def test_exception_tree_and_exit_codes() -> None:
    assert issubclass(ConfigError, ClearinghouseError) and ConfigError.exit_code == 2
    assert issubclass(StorageError, ClearinghouseError) and StorageError.exit_code == 75
    assert GnuPGError.exit_code == 1 and ClearinghouseError.exit_code == 1
    assert DeliveryError("x").permanent is False
    assert DeliveryError("x", permanent=True).permanent is True


def test_worker_concurrency_and_lease(tmp_path: Path) -> None:
    config = _load(tmp_path, "[worker]\nconcurrency = 4\nlease_seconds = 60\n")
    assert (config.worker.concurrency, config.worker.lease_seconds) == (4, 60)
    cores = len(os.sched_getaffinity(0))
    assert config.worker.thread_count == 4 + cores  # threads = 0: the gpg slots, one a core
    config = _load(tmp_path, "[worker]\nconcurrency = 3\nthreads = 5\n")
    assert (config.worker.concurrency, config.worker.thread_count) == (3, 5)
    assert "[worker] threads: must be at least 0, found -1" in _error(
        tmp_path, "[worker]\nthreads = -1\n"
    )
    assert config.worker.gpg_nice == 10
    machine = _load(tmp_path, "").worker  # the defaults come from the machine's cores
    assert (machine.concurrency, machine.threads) == (0, 0)
    assert (machine.gpg_slots, machine.thread_count) == (2 * cores, 3 * cores)
    assert "[worker] concurrency: must be at least 0, found -1" in _error(
        tmp_path, "[worker]\nconcurrency = -1\n"
    )
    assert _load(tmp_path, "[worker]\ngpg_nice = 0\n").worker.gpg_nice == 0
    assert "[worker] gpg_nice: must be at most 19, found 20" in _error(
        tmp_path, "[worker]\ngpg_nice = 20\n"
    )
    assert "[worker] gpg_nice: must be at least 0, found -1" in _error(
        tmp_path, "[worker]\ngpg_nice = -1\n"
    )
    assert "[worker] lease_seconds: must be at least 1" in _error(
        tmp_path, "[worker]\nlease_seconds = -5\n"
    )


def test_relays_must_be_addresses_or_networks() -> None:
    config = config_from_mapping({"smtp": {"relays": ["127.0.0.1", "2001:db8::/32"]}})
    assert config.smtp.relays == ("127.0.0.1", "2001:db8::/32")
    with pytest.raises(ConfigError, match=r"\[smtp\] relays: 'mx\.example' is not an IP"):
        config_from_mapping({"smtp": {"relays": ["mx.example"]}})
