"""Configuration: one TOML file read once into frozen, typed, validated values.

This is the only module that reads configuration; everything else is handed a `Config`
(or the one section it needs). In: a path to a TOML file, or nothing for the built-in
defaults. Out: a `Config`, or a `ConfigError` that names the file, the key, what was
expected and what was found.

Every key has a default (SPEC.md "Configuration (TOML)", plus the keys marked "added"
below; all of them, commented, in `clearinghouse.example.toml`). Unknown sections and keys
are refused, so a misspelt key never silently falls back to its default. Relative paths
resolve against the current working directory at load time. `database_url`,
`[outbound] maildir`, `[reports] output_dir` and `[publication] site_dir`, when not given,
derive from `home`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from contract.errors import ConfigError

TeamStatus = Literal["listed", "accredited", "certified", "suspended"]
TEAM_STATUSES: tuple[TeamStatus, ...] = typing.get_args(TeamStatus)
OutboundTransport = Literal["maildir", "smtp"]
ImapSecurity = Literal["tls", "starttls", "none"]
SenderBinding = Literal["off", "domain", "address"]

DEFAULT_HOME = Path("var")


@dataclass(frozen=True)
class CoreConfig:
    """[clearinghouse]: who we are and where the data lives."""

    name: str = "Clearinghouse"
    home: Path = DEFAULT_HOME
    database_url: str = "sqlite:///var/clearinghouse.db"
    intake_addresses: tuple[str, ...] = ("stats@clearinghouse.example",)
    gateway_address: str = "stats@clearinghouse.example"


@dataclass(frozen=True)
class SmtpConfig:
    """[smtp]: the SMTP intake listener."""

    listen: str = "127.0.0.1:2525"
    max_message_bytes: int = 10485760
    tls_cert: Path | None = None  # "" in TOML: no STARTTLS
    tls_key: Path | None = None
    require_starttls: bool = False
    max_recipients: int = 10  # added

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]


@dataclass(frozen=True)
class ImapConfig:
    """[imap]: the mailbox door; off unless `host` is set."""

    host: str = ""
    port: int = 993
    security: ImapSecurity = "tls"
    ca_file: Path | None = None
    username: str = ""
    password_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    failed_folder: str = "Failed"
    idle: bool = True
    poll_seconds: int = 60

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def read_password(self) -> str:
        """The password from `password_file`, without its trailing newline."""
        if self.password_file is None:
            raise ConfigError("[imap] password_file is not set")
        try:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigError(f"[imap] password_file {self.password_file}: {reason}") from None


@dataclass(frozen=True)
class OutboundConfig:
    """[outbound]: how replies and reports leave the gateway."""

    transport: OutboundTransport = "maildir"
    maildir: Path = DEFAULT_HOME / "outgoing"
    relay: str = "smtp://127.0.0.1:25"
    max_attempts: int = 12  # added: outbox delivery attempts before giving up


@dataclass(frozen=True)
class PolicyConfig:
    """[policy]: who may submit and what an acceptable message is."""

    require_encryption: bool = True
    max_signature_age_days: int = 30
    allowed_statuses: tuple[TeamStatus, ...] = ("accredited", "certified")
    reply_to_unauthenticated: bool = False
    sender_binding: SenderBinding = "domain"


@dataclass(frozen=True)
class ReportsConfig:
    """[reports]: the monthly statistics run."""

    day_of_month: int = 5
    output_dir: Path = DEFAULT_HOME / "reports"
    min_teams_for_public: int = 3
    reminder_days_before: int = 3  # added: 0 sends no reminders
    key_expiry_warning_days: int = 30  # added: 0 sends no key-expiry warnings


@dataclass(frozen=True)
class PublicationConfig:
    """[publication]: the public statistics site `report monthly` and `report publish` write."""

    site_dir: Path = DEFAULT_HOME / "site"
    base_url: str = ""  # "https://stats.example/": absolute links in the feed when set


@dataclass(frozen=True)
class LimitsConfig:
    """[limits] (added): caps on what untrusted input may cost us."""

    max_decrypted_bytes: int = 26214400
    max_mime_depth: int = 16
    max_mime_parts: int = 200
    signature_future_skew_minutes: int = 15


@dataclass(frozen=True)
class TaxonomyConfig:
    """[taxonomy] (added): a TOML file extending the shipped type 2 taxonomy."""

    extra_file: Path | None = None


LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class LoggingConfig:
    """[logging] (added): one event per line on stderr, as key=value pairs or JSON."""

    format: LogFormat = "text"
    level: LogLevel = "info"


@dataclass(frozen=True)
class MetricsConfig:
    """[metrics] (added): the Prometheus endpoint `serve` opens; "" turns it off."""

    listen: str = "127.0.0.1:9464"
    allow_remote: bool = False  # a listen address off loopback must be meant


@dataclass(frozen=True)
class HealthConfig:
    """[health] (added): when `clearinghouse health` reports a failure."""

    outbox_stuck_minutes: int = 60
    spool_backlog: int = 100
    key_expiry_days: int = 30


@dataclass(frozen=True)
class WorkerConfig:
    """[worker] (added): how the pipeline runs in this instance, and beside others."""

    # GnuPG processes run at once: most of a message's CPU is theirs, so 2 keeps two
    # cores busy. Instances sharing one PostgreSQL each run this many.
    concurrency: int = 2
    # Messages in the pipeline at once (threads); 0 means twice `concurrency`. More
    # threads than gpg slots, so that while one thread waits for a commit or parses,
    # another keeps gpg busy.
    threads: int = 0
    # How much lower gpg's CPU priority is than the rest of the gateway's (a nice
    # increment, 0-19): on a busy machine the SMTP door's answers come first.
    gpg_nice: int = 10
    # How long a claimed message or outbox entry stays with its worker; an instance
    # that died holding one lets it go after this long. Longer than any message takes.
    lease_seconds: int = 300

    @property
    def thread_count(self) -> int:
        return self.threads or 2 * self.concurrency


@dataclass(frozen=True)
class Config:
    """The whole configuration, one attribute per TOML section."""

    core: CoreConfig = field(default_factory=CoreConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    publication: PublicationConfig = field(default_factory=PublicationConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    taxonomy: TaxonomyConfig = field(default_factory=TaxonomyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    @property
    def clearinghouse(self) -> CoreConfig:
        """The [clearinghouse] section under its TOML name (the same object as `core`)."""
        return self.core

    @property
    def gnupg_home(self) -> Path:
        return self.core.home / "gnupg"


# TOML section name -> (attribute of Config, section class)
_SECTIONS: dict[str, tuple[str, type]] = {
    "clearinghouse": ("core", CoreConfig),
    "smtp": ("smtp", SmtpConfig),
    "imap": ("imap", ImapConfig),
    "outbound": ("outbound", OutboundConfig),
    "policy": ("policy", PolicyConfig),
    "reports": ("reports", ReportsConfig),
    "publication": ("publication", PublicationConfig),
    "limits": ("limits", LimitsConfig),
    "taxonomy": ("taxonomy", TaxonomyConfig),
    "logging": ("logging", LoggingConfig),
    "metrics": ("metrics", MetricsConfig),
    "health": ("health", HealthConfig),
    "worker": ("worker", WorkerConfig),
}


def default_config(home: Path) -> Config:
    """All defaults, with the data directory (and what derives from it) at `home`."""
    home = _absolute(home)
    return Config(
        core=CoreConfig(home=home, database_url=f"sqlite:///{home / 'clearinghouse.db'}"),
        outbound=OutboundConfig(maildir=home / "outgoing"),
        reports=ReportsConfig(output_dir=home / "reports"),
        publication=PublicationConfig(site_dir=home / "site"),
    )


def load_config(path: Path | None) -> Config:
    """Read and validate `path`; None means the built-in defaults under ./var."""
    if path is None:
        return default_config(DEFAULT_HOME)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_mapping(data, str(path))


def config_from_mapping(data: Mapping[str, object], source: str = "<config>") -> Config:
    """Validate parsed TOML (a dict of sections); `source` names it in error messages."""
    given: dict[str, dict[str, object]] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            what = "section" if isinstance(value, dict) else "top-level key"
            known = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise ConfigError(f"{source}: unknown {what} {name!r} (known sections: {known})")
        given[name] = _read_section(source, name, value, _SECTIONS[name][1])
    core = given.get("clearinghouse", {})
    if "database_url" in core:
        core["database_url"] = _absolute_sqlite(str(core["database_url"]))
    base = default_config(typing.cast(Path, core.get("home", DEFAULT_HOME)))
    sections = {
        attr: replace(getattr(base, attr), **given.get(name, {}))
        for name, (attr, _) in _SECTIONS.items()
    }
    config = replace(base, **sections)
    first = next(_problems(config), None)  # one problem at a time: fix, rerun
    if first is not None:
        section, key, problem = first
        raise ConfigError(f"{source}: [{section}] {key}: {problem}")
    return config


def _read_section(source: str, section: str, table: object, cls: type) -> dict[str, object]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{section}] must be a table, found {_describe(table)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{source}: unknown key {key!r} in [{section}] (known: {known})")
        try:
            values[key] = _convert(value, hints[key])
        except _Mismatch as exc:
            raise ConfigError(
                f"{source}: [{section}] {key}: expected {exc.expected}, found {exc.found}"
            ) from None
    return values


class _Mismatch(Exception):
    def __init__(self, expected: str, value: object) -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = _describe(value)


def _convert(value: object, hint: object) -> object:
    """Check one TOML value against a field's type hint and turn it into that type."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch("a boolean (true or false)", value)
    if hint is int:
        # bool is a subclass of int, but `true` where a number belongs is a mistake.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch("an integer", value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch("a string", value)
    if hint is Path:
        if isinstance(value, str) and value:
            return _absolute(Path(value))
        raise _Mismatch("a non-empty path", value)
    if hint == Path | None:
        if isinstance(value, str):
            return _absolute(Path(value)) if value else None
        raise _Mismatch('a path ("" for none)', value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _Mismatch("one of " + ", ".join(map(repr, args)), value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list):
            raise _Mismatch("an array", value)
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_convert(item, args[0]))
            except _Mismatch as exc:
                mismatch = _Mismatch(f"an array whose items are {exc.expected}", item)
                mismatch.found += f" as item {index + 1}"
                raise mismatch from None
        return tuple(items)
    raise TypeError(f"no TOML conversion for {hint!r}")  # a bug in a section class


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


def _absolute(path: Path) -> Path:
    # abspath, not resolve(): normalise against the cwd without chasing symlinks.
    return Path(os.path.abspath(path))


def _absolute_sqlite(url: str) -> str:
    """Anchor a relative SQLite file path to the cwd, like every other path here."""
    match = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", url)
    if not match or not match[2] or match[2] == ":memory:" or match[2].startswith(("/", "file:")):
        return url
    return match[1] + os.path.abspath(match[2]) + (match[3] or "")


# --- validation of values whose type is right --------------------------------------------

_ADDRESS = re.compile(
    r"[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_HOST_PORT = re.compile(
    r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<p6>\d{1,5})|(?P<h>[^\s:\[\]]+):(?P<p>\d{1,5})"
)


def is_address(text: str) -> bool:
    """A bare `local@domain` address (no display name, no angle brackets)."""
    return _ADDRESS.fullmatch(text) is not None


def split_host_port(text: str) -> tuple[str, int]:
    """Split `HOST:PORT` or `[IPV6]:PORT` into (host, port); ValueError if it is neither."""
    match = _HOST_PORT.fullmatch(text)
    if match is None or int(match["p6"] or match["p"]) > 65535:
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, found {text!r}")
    return match["v6"] or match["h"], int(match["p6"] or match["p"])


@dataclass(frozen=True)
class RelayURL:
    """A parsed `[outbound] relay`; the password never appears in its repr."""

    implicit_tls: bool  # smtps://
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_relay_url(url: str) -> RelayURL:
    """Parse smtp[s]://[user:pass@]host[:port]; ValueError messages never echo the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("expected smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname or port == 0:
        raise ValueError("expected smtp[s]://[user:pass@]host[:port], with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected nothing after host[:port]")
    if (parts.username is None) != (parts.password is None):
        raise ValueError("give both user and password (user:pass@), or neither")
    return RelayURL(
        implicit_tls=parts.scheme == "smtps",
        host=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_Problem = tuple[str, str, str]  # (section, key, what is wrong)


def _problems(c: Config) -> Iterator[_Problem]:
    """Every value that has the right type but is unusable, section by section."""
    yield from _core_problems(c.core)
    yield from _smtp_problems(c.smtp)
    yield from _imap_problems(c.imap)
    try:
        parse_relay_url(c.outbound.relay)
    except ValueError as exc:
        yield "outbound", "relay", str(exc)
    yield from _at_least(1, "outbound", c.outbound, "max_attempts")
    yield from _at_least(1, "policy", c.policy, "max_signature_age_days")
    if not 1 <= c.reports.day_of_month <= 28:
        yield "reports", "day_of_month", f"must be 1..28, found {c.reports.day_of_month}"
    yield from _at_least(1, "reports", c.reports, "min_teams_for_public")
    if c.publication.base_url and not re.fullmatch(
        r"https?://[^/\s]+(/\S*)?", c.publication.base_url
    ):
        yield (
            "publication",
            "base_url",
            f"must be empty or an http(s) URL, found {c.publication.base_url!r}",
        )
    yield from _at_least(0, "reports", c.reports, "reminder_days_before")
    yield from _at_least(0, "reports", c.reports, "key_expiry_warning_days")
    if c.reports.reminder_days_before >= c.reports.day_of_month:
        yield (
            "reports",
            "reminder_days_before",
            f"must be less than day_of_month ({c.reports.day_of_month}): reminders go out "
            "in the days just before the report day",
        )
    yield from _at_least(
        1, "limits", c.limits, "max_decrypted_bytes", "max_mime_depth", "max_mime_parts"
    )
    yield from _at_least(0, "limits", c.limits, "signature_future_skew_minutes")
    yield from _metrics_problems(c.metrics)
    yield from _at_least(
        1, "health", c.health, "outbox_stuck_minutes", "spool_backlog", "key_expiry_days"
    )
    yield from _at_least(1, "worker", c.worker, "concurrency", "lease_seconds")
    yield from _at_least(0, "worker", c.worker, "threads", "gpg_nice")
    if c.worker.gpg_nice > 19:
        yield "worker", "gpg_nice", f"must be at most 19, found {c.worker.gpg_nice}"


def _core_problems(core: CoreConfig) -> Iterator[_Problem]:
    if not core.name.strip():
        yield "clearinghouse", "name", "must not be empty"
    if not re.match(r"[A-Za-z][\w+.-]*://", core.database_url):
        yield "clearinghouse", "database_url", "expected an SQLAlchemy URL such as sqlite:///..."
    if not core.intake_addresses:
        yield "clearinghouse", "intake_addresses", "must list at least one address"
    for address in core.intake_addresses:
        if not is_address(address):
            yield "clearinghouse", "intake_addresses", f"{address!r} is not local@domain"
    if not is_address(core.gateway_address):
        yield "clearinghouse", "gateway_address", f"{core.gateway_address!r} is not local@domain"


def _smtp_problems(smtp: SmtpConfig) -> Iterator[_Problem]:
    try:
        split_host_port(smtp.listen)
    except ValueError as exc:
        yield "smtp", "listen", str(exc)
    if (smtp.tls_cert is None) != (smtp.tls_key is None):
        yield "smtp", "tls_key", "tls_cert and tls_key must be set together"
    if smtp.require_starttls and smtp.tls_cert is None:
        yield "smtp", "require_starttls", "needs tls_cert and tls_key"
    yield from _at_least(1, "smtp", smtp, "max_message_bytes", "max_recipients")


def _imap_problems(imap: ImapConfig) -> Iterator[_Problem]:
    if not 1 <= imap.port <= 65535:
        yield "imap", "port", f"must be 1..65535, found {imap.port}"
    if imap.enabled and imap.security == "none" and not _is_loopback(imap.host):
        yield "imap", "security", f'"none" is allowed only for a loopback host, not {imap.host!r}'
    if imap.enabled and not (imap.username and imap.password_file):
        yield "imap", "username", "an IMAP host needs username and password_file"
    for key in ("folder", "processed_folder", "failed_folder"):
        if not getattr(imap, key):
            yield "imap", key, "must not be empty"
    yield from _at_least(1, "imap", imap, "poll_seconds")


def _metrics_problems(metrics: MetricsConfig) -> Iterator[_Problem]:
    if not metrics.listen:
        return
    try:
        host, _ = split_host_port(metrics.listen)
    except ValueError as exc:
        yield "metrics", "listen", str(exc)
        return
    if not metrics.allow_remote and not _is_loopback(host):
        yield (
            "metrics",
            "listen",
            f"{host!r} is not a loopback address; set allow_remote = true if the metrics "
            "are meant to be reachable from other hosts",
        )


def _at_least(low: int, section: str, values: object, *keys: str) -> Iterator[_Problem]:
    for key in keys:
        value = getattr(values, key)
        if value < low:
            yield section, key, f"must be at least {low}, found {value}"
