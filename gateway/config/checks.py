"""Values whose type is right but which cannot be used: an address that is not one, a
port out of range, plain IMAP to a remote host, a metrics listener open to the network,
a canonical taxonomy we do not ship, a taxonomy extra file that cannot be read.

In: a whole `Config`. Out: each problem as (section, key, what is wrong), in section
order; the loader reports the first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from contract.errors import TaxonomyError
from gateway.addresses import is_address, is_loopback, parse_relay_url, split_host_port
from gateway.config.sections import (
    Config,
    CoreConfig,
    ImapConfig,
    MetricsConfig,
    SmtpConfig,
    TaxonomyConfig,
)
from parsers.taxonomy import VOCABULARIES, load_taxonomy

Problem = tuple[str, str, str]  # (section, key, what is wrong)


def problems(c: Config) -> Iterator[Problem]:
    """Every value that has the right type but is unusable, section by section."""
    yield from _core_problems(c.core)
    yield from _smtp_problems(c.smtp)
    yield from _imap_problems(c.imap)
    try:
        parse_relay_url(c.outbound.relay)
    except ValueError as exc:
        yield "outbound", "relay", str(exc)
    yield from _at_least(1, "outbound", c.outbound, "max_attempts")
    yield from _at_least(1, "policy", c.policy, "max_signature_age_days", "replay_after_hours")
    yield from _at_least(0, "policy", c.policy, "max_notices_per_team_per_hour")
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
        1,
        "limits",
        c.limits,
        "max_decrypted_bytes",
        "max_mime_depth",
        "max_mime_parts",
        "max_key_packets",
        "max_encryption_layers",
        "gpg_timeout_seconds",
        "max_header_fields",
        "max_header_bytes",
    )
    yield from _at_least(0, "limits", c.limits, "signature_future_skew_minutes")
    yield from _at_least(1, "logging", c.logging, "max_repeats", "repeat_window_seconds")
    yield from _taxonomy_problems(c.taxonomy)
    yield from _metrics_problems(c.metrics)
    yield from _at_least(
        1, "health", c.health, "outbox_stuck_minutes", "spool_backlog", "key_expiry_days"
    )
    yield from _at_least(1, "worker", c.worker, "lease_seconds")
    yield from _at_least(0, "retention", c.retention, "refused_raw_days", "accepted_raw_days")
    yield from _at_least(0, "worker", c.worker, "concurrency", "threads", "gpg_nice")
    if c.worker.gpg_nice > 19:
        yield "worker", "gpg_nice", f"must be at most 19, found {c.worker.gpg_nice}"
    yield from _at_least(1, "registry", c.registry, "ti_max_age_days", "ti_max_bytes")


def _core_problems(core: CoreConfig) -> Iterator[Problem]:
    if not core.name.strip():
        yield "clearinghouse", "name", "must not be empty"
    if not re.match(r"[A-Za-z][\w+.-]*://", core.database_url):
        yield "clearinghouse", "database_url", "expected an SQLAlchemy URL such as sqlite:///..."
    elif (backend := core.database_url.partition(":")[0].partition("+")[0]) not in (
        "sqlite",
        "postgresql",
    ):
        yield (
            "clearinghouse",
            "database_url",
            f"{backend!r} is not supported: use SQLite (sqlite:///FILE) or PostgreSQL "
            "(postgresql+psycopg://USER@HOST/DATABASE)",
        )
    if not core.intake_addresses:
        yield "clearinghouse", "intake_addresses", "must list at least one address"
    for address in core.intake_addresses:
        if not is_address(address):
            yield "clearinghouse", "intake_addresses", f"{address!r} is not local@domain"
    if not is_address(core.gateway_address):
        yield "clearinghouse", "gateway_address", f"{core.gateway_address!r} is not local@domain"


def _smtp_problems(smtp: SmtpConfig) -> Iterator[Problem]:
    try:
        split_host_port(smtp.listen)
    except ValueError as exc:
        yield "smtp", "listen", str(exc)
    if (smtp.tls_cert is None) != (smtp.tls_key is None):
        yield "smtp", "tls_key", "tls_cert and tls_key must be set together"
    if smtp.require_starttls and smtp.tls_cert is None:
        yield "smtp", "require_starttls", "needs tls_cert and tls_key"
    for relay in smtp.relays:
        try:
            ipaddress.ip_network(relay, strict=False)
        except ValueError:
            yield "smtp", "relays", f"{relay!r} is not an IP address or network"
    yield from _at_least(
        1,
        "smtp",
        smtp,
        "max_message_bytes",
        "max_recipients",
        "max_connections",
        "max_connections_per_client",
        "idle_timeout_seconds",
        "min_bytes_per_second",
    )
    yield from _at_least(
        0, "smtp", smtp, "max_bytes_per_client_per_hour", "max_messages_per_client_per_hour"
    )
    if smtp.max_connections_per_client > smtp.max_connections:
        yield "smtp", "max_connections_per_client", "must not exceed max_connections"


def _imap_problems(imap: ImapConfig) -> Iterator[Problem]:
    if not 1 <= imap.port <= 65535:
        yield "imap", "port", f"must be 1..65535, found {imap.port}"
    if imap.enabled and imap.security == "none" and not is_loopback(imap.host):
        yield "imap", "security", f'"none" is allowed only for a loopback host, not {imap.host!r}'
    if imap.enabled and not (imap.username and imap.password_file):
        yield "imap", "username", "an IMAP host needs username and password_file"
    for key in ("folder", "processed_folder", "failed_folder"):
        if not getattr(imap, key):
            yield "imap", key, "must not be empty"
    yield from _at_least(1, "imap", imap, "poll_seconds")


def _taxonomy_problems(taxonomy: TaxonomyConfig) -> Iterator[Problem]:
    """The taxonomy is loaded here, once, so that a broken extra file stops every command
    at start (and `ingest` with 75, the MTA keeping the message) rather than the first
    report or the monthly run that reads it."""
    if taxonomy.canonical not in VOCABULARIES:
        yield (
            "taxonomy",
            "canonical",
            f"must be one of {', '.join(VOCABULARIES)}, found {taxonomy.canonical!r}",
        )
        return
    try:
        load_taxonomy(taxonomy.extra_file, canonical=taxonomy.canonical)
    except TaxonomyError as exc:
        yield "taxonomy", "extra_file", f'{exc}; fix the file, or set extra_file = ""'


def _metrics_problems(metrics: MetricsConfig) -> Iterator[Problem]:
    if not metrics.listen:
        return
    try:
        host, _ = split_host_port(metrics.listen)
    except ValueError as exc:
        yield "metrics", "listen", str(exc)
        return
    if not metrics.allow_remote and not is_loopback(host):
        yield (
            "metrics",
            "listen",
            f"{host!r} is not a loopback address; set allow_remote = true if the metrics "
            "are meant to be reachable from other hosts",
        )


def _at_least(low: int, section: str, values: object, *keys: str) -> Iterator[Problem]:
    for key in keys:
        value = getattr(values, key)
        if value < low:
            yield section, key, f"must be at least {low}, found {value}"
