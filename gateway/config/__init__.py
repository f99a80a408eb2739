"""Configuration: one TOML file read once into frozen, typed, validated values.

This is the only package that reads configuration; everything else is handed a `Config`
(or the one section it needs). `sections.py` holds the sections and their defaults,
`loader.py` reads the TOML file into them, `checks.py` refuses values that have the right
type but cannot be used.
"""

from gateway.config.loader import config_from_mapping, default_config, load_config
from gateway.config.sections import (
    DEFAULT_HOME,
    TEAM_STATUSES,
    Config,
    CoreConfig,
    HealthConfig,
    ImapConfig,
    ImapSecurity,
    LimitsConfig,
    LogFormat,
    LoggingConfig,
    LogLevel,
    MetricsConfig,
    OutboundConfig,
    OutboundTransport,
    PolicyConfig,
    PublicationConfig,
    RegistryConfig,
    ReportsConfig,
    RetentionConfig,
    SenderBinding,
    SmtpConfig,
    TaxonomyConfig,
    TeamStatus,
    WorkerConfig,
)

__all__ = [
    "config_from_mapping",
    "default_config",
    "load_config",
    "Config",
    "CoreConfig",
    "DEFAULT_HOME",
    "HealthConfig",
    "ImapConfig",
    "ImapSecurity",
    "LimitsConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "MetricsConfig",
    "OutboundConfig",
    "OutboundTransport",
    "PolicyConfig",
    "PublicationConfig",
    "RegistryConfig",
    "ReportsConfig",
    "RetentionConfig",
    "SenderBinding",
    "SmtpConfig",
    "TEAM_STATUSES",
    "TaxonomyConfig",
    "TeamStatus",
    "WorkerConfig",
]
