"""The composition root: one `App` wires configuration, store, keyring and policy.

The CLI, the SMTP door, the worker and the demo all build one `App` from a `Config` and
pass it down; nothing below reads configuration or the environment by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.lazy import shared_cached_property
from gateway.metrics import Metrics
from keys.gpg import GnuPG
from keys.identity import GatewayIdentity, load_identity
from keys.policy import Policy
from keys.registry import Registry
from keys.unwrap import Limits, Unwrapper
from parsers.taxonomy import Taxonomy, load_taxonomy
from store.db import create_schema, make_engine


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
            max_parallel=self.config.worker.concurrency,
            nice=self.config.worker.gpg_nice,
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
        )

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
        extra = self.config.taxonomy.extra_file
        return load_taxonomy(Path(extra) if extra else None)

    @shared_cached_property
    def metrics(self) -> Metrics:
        return Metrics()

    def create_schema(self) -> None:
        self.config.clearinghouse.home.mkdir(parents=True, exist_ok=True)
        create_schema(self.engine)
