"""One incident vocabulary (eCSIRT.net v2, RSIT 1.3): its classes and types, and the index
that resolves names as teams write them.

In: a vocabulary file shipped in parsers/taxonomies/ (its header keys, then `[[class]]`
tables with `[[class.type]]`; the files document the format), optionally extended by the
matching section of the extra file of `[taxonomy] extra_file`. Out: a frozen `Vocabulary`
that lists its classes in report order, labels (class, type) slugs and resolves a written
class/type name. A broken file raises `TaxonomyError` saying where; resolving names written
by teams never raises.

An extension adds classes, or types and spellings to an existing class (same slug); it
cannot redefine a type. `maps_to` of an extension entry (its counterpart in the other
vocabulary) is read here and applied by `parsers.crosswalk`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.errors import TaxonomyError
from parsers.fieldnames import normalise_key

Target = tuple[str, str | None]  # (class slug, type slug or None for class-only)

_HEADER_KEYS = {"id", "name", "title", "version", "machine_version", "aliases", "class"}
_CLASS_KEYS = {"slug", "name", "aliases", "type", "maps_to"}
_TYPE_KEYS = {"slug", "name", "aliases", "maps_to"}


@dataclass(frozen=True)
class IncidentType:
    slug: str
    name: str


@dataclass(frozen=True)
class IncidentClass:
    slug: str
    name: str
    types: tuple[IncidentType, ...] = ()


@dataclass
class Spec:
    """One class or type table as read from TOML, before it is indexed."""

    slug: str
    name: str
    aliases: list[str]
    maps_to: str | None
    children: list[Spec] = field(default_factory=list)

    def spellings(self) -> set[str]:
        return {normalise_key(s) for s in (self.slug, self.name, *self.aliases)}


@dataclass(frozen=True)
class _Node:
    slug: str
    types: Mapping[str, str]  # type spelling -> type slug


@dataclass(frozen=True)
class Vocabulary:
    """A vocabulary's classes in report order, what it is called, and its name index."""

    id: str  # "rsit-1.3": what `Taxonomy:` lines and `[taxonomy] canonical` say
    name: str  # "RSIT 1.3": how outputs name it
    title: str
    version: str
    machine_version: int | None
    aliases: tuple[str, ...]
    classes: tuple[IncidentClass, ...]
    _index: Mapping[str, _Node] = field(repr=False, compare=False)
    _keys: frozenset[Target] = field(repr=False, compare=False, default=frozenset())

    @property
    def full_name(self) -> str:
        """The vocabulary as every output names it, version included."""
        if self.machine_version is None:
            return f"{self.name} ({self.title})"
        return f"{self.name} ({self.title}, machine-readable version {self.machine_version})"

    def find(self, class_name: str, type_name: str | None) -> Target | None:
        """(class slug, type slug or None) of a class/type as written, or None if unknown."""
        node = self._index.get(normalise_key(class_name))
        if node is None:
            return None
        if type_name is None:
            return (node.slug, None)
        type_slug = node.types.get(normalise_key(type_name))
        return None if type_slug is None else (node.slug, type_slug)

    def knows_class(self, class_name: str) -> bool:
        return normalise_key(class_name) in self._index

    def has(self, target: Target) -> bool:
        return target in self._keys

    def categories(self) -> Iterator[tuple[Target, str]]:
        """Every countable (class, type) in report order: each class, then its types."""
        for cls in self.classes:
            yield (cls.slug, None), cls.name
            for typ in cls.types:
                yield (cls.slug, typ.slug), f"{cls.name} / {typ.name}"

    def label_of(self, target: Target) -> str:
        """The display name of a (class slug, type slug), e.g. "Malicious Code / Virus".

        Stored counts may name a slug a later configuration dropped; they are shown by
        their slugs rather than lost from the statistics.
        """
        for key, name in self.categories():
            if key == target:
                return name
        class_slug, type_slug = target
        return class_slug if type_slug is None else f"{class_slug} / {type_slug}"


def read_header(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The header keys of a shipped vocabulary file, checked."""
    unknown = set(data) - _HEADER_KEYS
    if unknown:
        raise TaxonomyError(f"{where}: unknown key(s) {sorted(unknown)}")
    for key in ("id", "name", "title", "version"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise TaxonomyError(f"{where}: {key} must be a non-empty string")
    machine = data.get("machine_version")
    if machine is not None and (not isinstance(machine, int) or isinstance(machine, bool)):
        raise TaxonomyError(f"{where}: machine_version must be an integer")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise TaxonomyError(f"{where}: aliases must be a list of strings")
    return data


def read_classes(tables: object, where: str) -> list[Spec]:
    """The `[[class]]` tables of a file (or a section of the extra file), checked."""
    if not isinstance(tables, list):
        raise TaxonomyError(f"{where}: must be an array of tables ([[...]])")
    return [_read_spec(table, where, _CLASS_KEYS) for table in tables]


def _read_spec(table: object, where: str, allowed: set[str]) -> Spec:
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
    return Spec(slug, name, list(aliases), maps_to, children)


def merge(base: list[Spec], extra: list[Spec], where: str) -> list[Spec]:
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
        merged[spec.slug] = Spec(
            known.slug,
            known.name,
            known.aliases + spec.aliases,
            known.maps_to,
            known.children + spec.children,
        )
    return list(merged.values())


def build(header: dict[str, Any], specs: list[Spec]) -> Vocabulary:
    """The vocabulary of a checked header and its (merged) class specs."""
    classes = tuple(
        IncidentClass(c.slug, c.name, tuple(IncidentType(t.slug, t.name) for t in c.children))
        for c in specs
    )
    index: dict[str, _Node] = {}
    where = str(header["id"])
    for spec in specs:
        types: dict[str, str] = {}
        for child in spec.children:
            for spelling in child.spellings():
                if spelling in types:
                    raise TaxonomyError(
                        f"{where} {spec.slug}: type name {spelling!r} is used twice"
                    )
                types[spelling] = child.slug
        for spelling in spec.spellings():
            if spelling in index:
                raise TaxonomyError(f"{where}: class name {spelling!r} is used twice")
            index[spelling] = _Node(spec.slug, types)
    return Vocabulary(
        id=where,
        name=str(header["name"]),
        title=str(header["title"]),
        version=str(header["version"]),
        machine_version=header.get("machine_version"),
        aliases=tuple(header.get("aliases", ())),
        classes=classes,
        _index=index,
        _keys=frozenset(key for cls in specs for key in _keys_of(cls)),
    )


def _keys_of(spec: Spec) -> list[Target]:
    return [(spec.slug, None), *((spec.slug, child.slug) for child in spec.children)]
