"""Reading the TOML file into a `Config`: section by section, key by key, type by type.

In: a path (or nothing: the built-in defaults under ./var), or an already parsed mapping.
Out: a `Config`, or a `ConfigError` that names the file, the key, what was expected and
what was found. Unknown sections and keys are refused, so a misspelt key never silently
falls back to its default. Values of the right type are then checked by `checks.py`.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

from contract.errors import ConfigError
from gateway.config.checks import problems
from gateway.config.sections import (
    DEFAULT_HOME,
    Config,
    CoreConfig,
    HealthConfig,
    ImapConfig,
    LimitsConfig,
    LoggingConfig,
    MetricsConfig,
    OutboundConfig,
    PolicyConfig,
    PublicationConfig,
    RegistryConfig,
    ReportsConfig,
    RetentionConfig,
    SmtpConfig,
    TaxonomyConfig,
    WorkerConfig,
)

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
    "registry": ("registry", RegistryConfig),
    "retention": ("retention", RetentionConfig),
}


def default_config(home: Path, base: Path | None = None) -> Config:
    """All defaults, with the data directory (and what derives from it) at `home`;
    relative to `base` (a configuration file's directory), else to the cwd."""
    home = _absolute(home, base)
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
    return config_from_mapping(data, str(path), base=Path(path).parent)


def config_from_mapping(
    data: Mapping[str, object], source: str = "<config>", *, base: Path | None = None
) -> Config:
    """Validate parsed TOML (a dict of sections); `source` names it in error messages.

    Relative paths (and a relative SQLite file) are relative to `base`, the directory of
    the file the TOML came from, so that the same file means the same data directory from
    wherever a command runs; without `base`, to the working directory.
    """
    given: dict[str, dict[str, object]] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            what = "section" if isinstance(value, dict) else "top-level key"
            known = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise ConfigError(f"{source}: unknown {what} {name!r} (known sections: {known})")
        given[name] = _read_section(source, name, value, _SECTIONS[name][1], base)
    core = given.get("clearinghouse", {})
    if "database_url" in core:
        core["database_url"] = _absolute_sqlite(str(core["database_url"]), base)
    defaults = default_config(typing.cast(Path, core.get("home", DEFAULT_HOME)), base)
    sections = {
        attr: replace(getattr(defaults, attr), **given.get(name, {}))
        for name, (attr, _) in _SECTIONS.items()
    }
    config = replace(defaults, **sections)
    first = next(problems(config), None)  # one problem at a time: fix, rerun
    if first is not None:
        section, key, problem = first
        raise ConfigError(f"{source}: [{section}] {key}: {problem}")
    return config


def _read_section(
    source: str, section: str, table: object, cls: type, base: Path | None
) -> dict[str, object]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{section}] must be a table, found {_describe(table)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{source}: unknown key {key!r} in [{section}] (known: {known})")
        try:
            values[key] = _convert(value, hints[key], base)
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


def _convert(value: object, hint: object, base: Path | None = None) -> object:
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
            return _absolute(Path(value), base)
        raise _Mismatch("a non-empty path", value)
    if hint == Path | None:
        if isinstance(value, str):
            return _absolute(Path(value), base) if value else None
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
                items.append(_convert(item, args[0], base))
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


def _absolute(path: Path, base: Path | None = None) -> Path:
    # abspath, not resolve(): normalise without chasing symlinks.
    return Path(os.path.abspath(path if base is None else base / path))


def _absolute_sqlite(url: str, base: Path | None = None) -> str:
    """Anchor a relative SQLite file path like every other path here."""
    match = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", url)
    if not match or not match[2] or match[2] == ":memory:" or match[2].startswith(("/", "file:")):
        return url
    return match[1] + str(_absolute(Path(match[2]), base)) + (match[3] or "")
