"""The type 2 incident taxonomy: which class/type names a report may use, and their slugs.

In: `taxonomy.toml` shipped beside this module (eCSIRT.net v2 and the ENISA RSIT mapping;
the file's header documents the format and the mapping), optionally extended by an extra
file of the same format named in the configuration. Out: a frozen `Taxonomy` that resolves
a class/type as written by a team to eCSIRT slugs, and lists classes and types in report
order for the monthly statistics.

A broken taxonomy file is a configuration mistake, so `load_taxonomy` raises
`TaxonomyError`; resolving names written by teams never raises.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from parsers.fieldnames import normalise_key

Target = tuple[str, str | None]  # (class slug, type slug or None for class-only)

_CLASS_KEYS = {"slug", "name", "aliases", "type", "maps_to"}
_TYPE_KEYS = {"slug", "name", "aliases", "maps_to"}
_SECTIONS = {"class", "rsit_class"}


class TaxonomyError(ValueError):
    """The taxonomy file (shipped or extra) is not valid; the message says where."""


@dataclass(frozen=True)
class IncidentType:
    slug: str
    name: str


@dataclass(frozen=True)
class IncidentClass:
    slug: str
    name: str
    types: tuple[IncidentType, ...] = ()


@dataclass(frozen=True)
class Match:
    """A resolved class/type, and the RSIT name it came through (None: an eCSIRT name)."""

    target: Target
    rsit: str | None = None


@dataclass
class _Spec:
    """One [[class]] / [[class.type]] / [[rsit_class]] table as read from TOML."""

    slug: str
    name: str
    aliases: list[str]
    maps_to: str | None
    children: list[_Spec] = field(default_factory=list)

    def spellings(self) -> set[str]:
        return {normalise_key(s) for s in (self.slug, self.name, *self.aliases)}


@dataclass(frozen=True)
class _Node:
    match: Match
    children: Mapping[str, Match]


@dataclass(frozen=True)
class Taxonomy:
    """The eCSIRT classes in report order, and the index that resolves written names."""

    classes: tuple[IncidentClass, ...]
    _ecsirt: Mapping[str, _Node] = field(repr=False)
    _rsit: Mapping[str, _Node] = field(repr=False)

    def __iter__(self) -> Iterator[IncidentClass]:
        return iter(self.classes)

    def lookup(self, class_name: str, type_name: str | None) -> Match | None:
        """Resolve as `resolve` does, also telling whether an RSIT name was used."""
        wanted_class = normalise_key(class_name)
        wanted_type = None if type_name is None else normalise_key(type_name)
        for index in (self._ecsirt, self._rsit):  # an eCSIRT name wins over RSIT
            node = index.get(wanted_class)
            if node is None:
                continue
            if wanted_type is None:
                return node.match
            found = node.children.get(wanted_type)
            if found is not None:
                return found
        return None

    def resolve(self, class_name: str, type_name: str | None) -> Target | None:
        """(class slug, type slug or None) for a class/type as written, or None if unknown."""
        match = self.lookup(class_name, type_name)
        return None if match is None else match.target

    def knows_class(self, class_name: str) -> bool:
        wanted = normalise_key(class_name)
        return wanted in self._ecsirt or wanted in self._rsit

    def categories(self) -> Iterator[tuple[Target, str]]:
        """Every countable (class, type) in report order: each class, then its types."""
        for cls in self.classes:
            yield (cls.slug, None), cls.name
            for typ in cls.types:
                yield (cls.slug, typ.slug), f"{cls.name} / {typ.name}"

    def label(self, target: Target) -> str:
        """The display name of a (class slug, type slug), e.g. "Malicious Code / Virus".

        Stored counts may name a slug a later configuration dropped; they are shown by
        their slugs rather than lost from the statistics.
        """
        for key, name in self.categories():
            if key == target:
                return name
        class_slug, type_slug = target
        return class_slug if type_slug is None else f"{class_slug} / {type_slug}"


def load_taxonomy(extra: Path | None = None) -> Taxonomy:
    """The shipped taxonomy, extended by `extra` (same TOML format) when given."""
    shipped = resources.files("parsers").joinpath("taxonomy.toml").read_text("utf-8")
    sections = _read_sections(tomllib.loads(shipped), "taxonomy.toml")
    if extra is not None:
        try:
            data = tomllib.loads(extra.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise TaxonomyError(f"{extra}: {exc}") from exc
        for section, specs in _read_sections(data, str(extra)).items():
            sections[section] = _merge(sections[section], specs, str(extra))
    return _build(sections["class"], sections["rsit_class"])


def _read_sections(data: dict[str, Any], where: str) -> dict[str, list[_Spec]]:
    unknown = set(data) - _SECTIONS
    if unknown:
        raise TaxonomyError(f"{where}: unknown section(s) {sorted(unknown)}")
    sections: dict[str, list[_Spec]] = {}
    for section in sorted(_SECTIONS):
        tables = data.get(section, [])
        if not isinstance(tables, list):
            raise TaxonomyError(f"{where}: [[{section}]] must be an array of tables")
        sections[section] = [_read_spec(t, f"{where}: {section}", _CLASS_KEYS) for t in tables]
    return sections


def _read_spec(table: object, where: str, allowed: set[str]) -> _Spec:
    if not isinstance(table, dict):
        raise TaxonomyError(f"{where}: each entry must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise TaxonomyError(f"{where}: unknown key(s) {sorted(unknown)}")
    slug, name = table.get("slug"), table.get("name")
    aliases, maps_to = table.get("aliases", []), table.get("maps_to")
    if not isinstance(slug, str) or not slug or normalise_key(slug) != slug or "/" in slug:
        raise TaxonomyError(f"{where}: slug {slug!r} must be lower-case words joined by '-'")
    if not isinstance(name, str) or not name.strip():
        raise TaxonomyError(f"{where} {slug}: name must be a non-empty string")
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise TaxonomyError(f"{where} {slug}: aliases must be a list of strings")
    if maps_to is not None and not isinstance(maps_to, str):
        raise TaxonomyError(f"{where} {slug}: maps_to must be a string")
    types = table.get("type", [])
    if not isinstance(types, list):
        raise TaxonomyError(f"{where} {slug}: [[type]] must be an array of tables")
    children = [_read_spec(t, f"{where} {slug} type", _TYPE_KEYS) for t in types]
    return _Spec(slug, name, list(aliases), maps_to, children)


def _merge(base: list[_Spec], extra: list[_Spec], where: str) -> list[_Spec]:
    """Extra classes are appended; an extra class with a known slug adds its types."""
    merged = {spec.slug: spec for spec in base}
    for spec in extra:
        known = merged.get(spec.slug)
        if known is None:
            merged[spec.slug] = spec
            continue
        if spec.maps_to is not None and spec.maps_to != known.maps_to:
            raise TaxonomyError(f"{where}: class {spec.slug} cannot change its maps_to")
        existing = {child.slug for child in known.children}
        for child in spec.children:
            if child.slug in existing:
                raise TaxonomyError(f"{where}: {spec.slug}/{child.slug} is already defined")
        merged[spec.slug] = _Spec(
            known.slug,
            known.name,
            known.aliases + spec.aliases,
            known.maps_to,
            known.children + spec.children,
        )
    return list(merged.values())


def _build(ecsirt: list[_Spec], rsit: list[_Spec]) -> Taxonomy:
    classes = tuple(
        IncidentClass(c.slug, c.name, tuple(IncidentType(t.slug, t.name) for t in c.children))
        for c in ecsirt
    )
    targets: set[Target] = {(c.slug, None) for c in classes}
    targets |= {(c.slug, t.slug) for c in classes for t in c.types}
    native: dict[str, _Node] = {}
    for spec in ecsirt:
        if spec.maps_to is not None or any(t.maps_to is not None for t in spec.children):
            raise TaxonomyError(f"class {spec.slug}: maps_to is only for [[rsit_class]]")
        types = {t.slug: Match((spec.slug, t.slug)) for t in spec.children}
        _index(native, spec, Match((spec.slug, None)), types, f"class {spec.slug}")
    foreign: dict[str, _Node] = {}
    for spec in rsit:
        types = {t.slug: _mapped(t, targets, f"{spec.name} / {t.name}") for t in spec.children}
        _index(foreign, spec, _mapped(spec, targets, spec.name), types, f"rsit {spec.slug}")
    return Taxonomy(classes, native, foreign)


def _mapped(spec: _Spec, targets: set[Target], rsit_name: str) -> Match:
    if spec.maps_to is None:
        raise TaxonomyError(f"rsit {spec.slug}: maps_to is required")
    class_slug, _, type_slug = spec.maps_to.partition("/")
    target = (class_slug, type_slug or None)
    if target not in targets:
        raise TaxonomyError(f"rsit {spec.slug}: maps_to {spec.maps_to!r} is not an eCSIRT slug")
    return Match(target, rsit_name)


def _index(
    index: dict[str, _Node], spec: _Spec, match: Match, types: dict[str, Match], where: str
) -> None:
    children: dict[str, Match] = {}
    for child in spec.children:
        for spelling in child.spellings():
            if spelling in children:
                raise TaxonomyError(f"{where}: type name {spelling!r} is used twice")
            children[spelling] = types[child.slug]
    for spelling in spec.spellings():
        if spelling in index:
            raise TaxonomyError(f"{where}: class name {spelling!r} is used twice")
        index[spelling] = _Node(match, children)
