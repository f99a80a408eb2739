"""The configuration's sections: one frozen dataclass each, every key with its default.

Every key has a default (docs/reference.md "Configuration", plus the keys marked "added"
below; all of them, commented, in `clearinghouse.example.toml`). `database_url`,
`[outbound] maildir`, `[reports] output_dir` and `[publication] site_dir`, when not given,
derive from `home`.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contract.errors import ConfigError
from gateway.addresses import split_host_port

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
    # added: what one client may cost the door (gateway/intake/smtp_guard.py)
    max_connections: int = 100  # at once, overall; 421 beyond
    max_connections_per_client: int = 10  # at once, from one address (IPv6: its /64)
    idle_timeout_seconds: int = 60  # waiting for a client, plus what its bytes earn:
    min_bytes_per_second: int = 1024  # a client slower than this is dropped
    max_bytes_per_client_per_hour: int = 104857600  # stored per hour; 452 beyond; 0: none
    max_messages_per_client_per_hour: int = 120  # the same, counted in messages
    # added: clients that relay for many senders (the MTA in front of the gateway, e.g.
    # "127.0.0.1"): addresses or networks to which no per-client cap or quota applies
    relays: tuple[str, ...] = ()

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
    # added: rejections and notices (not receipts) to one team per hour; 0: no limit.
    max_notices_per_team_per_hour: int = 10
    # added: a refusal of content signed this long before it arrived counts as a replay
    # in the coordinator summary (not as the team's own rejection).
    replay_after_hours: int = 24


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
    # Read from the packet headers before gpg runs (keys/packets.py): each key packet
    # addressed to the gateway costs gpg-agent a private-key operation.
    max_key_packets: int = 16
    max_encryption_layers: int = 1
    gpg_timeout_seconds: int = 60  # every gpg process is killed after this long
    # Header fields and bytes of the outer message: capped at intake (SMTP 552) and
    # before parsing (malformed-mime), so that a header of millions of lines costs nothing.
    max_header_fields: int = 1000
    max_header_bytes: int = 262144


@dataclass(frozen=True)
class RetentionConfig:
    """[retention]: how long raw mail is kept (`messages purge`, daily by a timer)."""

    refused_raw_days: int = 90  # quarantined, rejected, duplicate; 0: kept
    accepted_raw_days: int = 0  # 0: kept; the message record always stays


@dataclass(frozen=True)
class TaxonomyConfig:
    """[taxonomy] (added): the type 2 vocabulary statistics are computed and labelled in
    ("ecsirt-v2" or "rsit-1.3", checked in `checks.py`), and a TOML file extending the
    shipped vocabularies."""

    canonical: str = "ecsirt-v2"
    extra_file: Path | None = None


LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class LoggingConfig:
    """[logging] (added): one event per line on stderr, as key=value pairs or JSON."""

    format: LogFormat = "text"
    level: LogLevel = "info"
    # An identical event (same logger, level, message, fields) is written at most this
    # many times per window; the rest are counted in one line (gateway/log_repeats.py).
    max_repeats: int = 10
    repeat_window_seconds: int = 60


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
class RegistryConfig:
    """[registry]: the trust registry, and its sync from the Trusted Introducer directory."""

    welcome_on_first_key: bool = True
    # added: `health` fails when a linked team's directory entry is older than this
    # (no `teams sync --apply` has found it for so long)
    ti_max_age_days: int = 3
    ti_max_bytes: int = 8388608  # added: a larger directory file is refused unread


@dataclass(frozen=True)
class WorkerConfig:
    """[worker] (added): how the pipeline runs in this instance, and beside others."""

    # GnuPG processes run at once; 0 means twice the cores this process may use. Each gpg
    # process spends part of its time waiting for gpg-agent, so on two cores four keep the
    # machine busiest (bench/README.md). Instances sharing one PostgreSQL each run this many.
    concurrency: int = 0
    # Messages in the pipeline at once (threads); 0 means the gpg slots plus one a core.
    # More threads than gpg slots, so that while one thread waits for a commit or parses,
    # another keeps gpg busy.
    threads: int = 0
    # How much lower gpg's CPU priority is than the rest of the gateway's (a nice
    # increment, 0-19): on a busy machine the SMTP door's answers come first.
    gpg_nice: int = 10
    # How long a claimed message or outbox entry stays with its worker; an instance
    # that died holding one lets it go after this long. Longer than any message takes.
    lease_seconds: int = 300

    @property
    def gpg_slots(self) -> int:
        """`concurrency` as set, or from the machine."""
        return self.concurrency or 2 * usable_cores()

    @property
    def thread_count(self) -> int:
        """`threads` as set, or from the gpg slots and the machine."""
        return self.threads or self.gpg_slots + usable_cores()


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which containers narrow)."""
    return len(os.sched_getaffinity(0)) or 1


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
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    @property
    def clearinghouse(self) -> CoreConfig:
        """The [clearinghouse] section under its TOML name (the same object as `core`)."""
        return self.core

    @property
    def gnupg_home(self) -> Path:
        return self.core.home / "gnupg"
