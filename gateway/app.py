"""The composition root: one `App` wires configuration, store, keyring and policy.

The CLI, the SMTP door, the worker and the demo all build one `App` from a `Config` and
pass it down; nothing below reads configuration or the environment by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.errors import SetupError
from gateway.config import Config
from gateway.lazy import shared_cached_property
from gateway.metrics import Metrics
from keys.gpg import GnuPG
from keys.headers import HeaderLimits
from keys.identity import GatewayIdentity, load_identity
from keys.packets import PacketLimits
from keys.policy import Policy
from keys.registry import Registry
from keys.shapes import Limits
from keys.unwrap import Unwrapper
from parsers.taxonomy import Taxonomy, load_taxonomy
from store.db import make_engine
from store.migrate import upgrade
from store.readiness import Readiness, describe, readiness
from store.write_turns import database_file


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    clock: Callable[[], datetime] = field(default=utcnow)

    @shared_cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.clearinghouse.database_url)

    @shared_cached_property
    def gpg(self) -> GnuPG:
        return GnuPG(
            self.config.gnupg_home,
            max_output=self.config.limits.max_decrypted_bytes,
            max_parallel=self.config.worker.gpg_slots,
            nice=self.config.worker.gpg_nice,
            timeout=self.config.limits.gpg_timeout_seconds,
        )

    @shared_cached_property
    def registry(self) -> Registry:
        return Registry(self.engine, self.gpg)

    @shared_cached_property
    def identity(self) -> GatewayIdentity:
        return load_identity(self.gpg)

    @shared_cached_property
    def unwrapper(self) -> Unwrapper:
        lim = self.config.limits
        limits = Limits(lim.max_mime_depth, lim.max_mime_parts, lim.max_decrypted_bytes)
        return Unwrapper(
            self.gpg,
            limits,
            require_encryption=self.config.policy.require_encryption,
            passphrase=self.identity.passphrase,
            packets=PacketLimits(lim.max_key_packets, lim.max_encryption_layers),
            headers=self.header_limits,
        )

    @property
    def header_limits(self) -> HeaderLimits:
        lim = self.config.limits
        return HeaderLimits(lim.max_header_fields, lim.max_header_bytes)

    @shared_cached_property
    def policy(self) -> Policy:
        p = self.config.policy
        return Policy(
            allowed_statuses=tuple(p.allowed_statuses),
            max_signature_age=timedelta(days=p.max_signature_age_days),
            future_skew=timedelta(minutes=self.config.limits.signature_future_skew_minutes),
            sender_binding=p.sender_binding,
            intake_addresses=tuple(self.config.clearinghouse.intake_addresses),
        )

    @shared_cached_property
    def taxonomy(self) -> Taxonomy:
        """The configured vocabularies, counting in `[taxonomy] canonical` (the
        configuration's load already refused a broken extra file or canonical)."""
        chosen = self.config.taxonomy
        return load_taxonomy(chosen.extra_file, canonical=chosen.canonical)

    @shared_cached_property
    def metrics(self) -> Metrics:
        return Metrics()

    def initialise(self) -> None:
        """Make the data directory (and an SQLite file's) and the newest schema: `init`."""
        self.config.clearinghouse.home.mkdir(parents=True, exist_ok=True)
        database = database_file(self.engine.url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        self.create_schema()

    def create_schema(self) -> None:
        """Bring an existing database to the newest schema, keeping every row."""
        try:
            upgrade(self.engine)
        except (SQLAlchemyError, ImportError) as exc:
            raise SetupError(describe(exc, self.engine.url)) from None

    def readiness(self) -> Readiness:
        """Where the data directory's database stands (SetupError if it cannot be used)."""
        return readiness(self.engine)
