"""The type 2 incident taxonomy: the vocabularies teams may use, and what each count counts as.

In: the vocabulary files shipped in parsers/taxonomies/ (eCSIRT.net v2 and RSIT 1.3) and
their mapping (mapping.toml), optionally extended by an extra file (`[taxonomy]
extra_file`: `[[class]]` tables extend eCSIRT.net v2, `[[rsit_class]]` tables RSIT 1.3),
and the canonical vocabulary, the one statistics are computed in (`[taxonomy] canonical`).
Out: a frozen `Taxonomy` that resolves a class/type as a team wrote it to what was sent
(vocabulary, class, type) and what that counts as in the canonical vocabulary, and lists
the canonical classes and types in report order for the statistics.

Without a `Taxonomy:` line, names are resolved in eCSIRT.net v2 first, then in RSIT 1.3.
A broken taxonomy file, or an unknown canonical vocabulary, is a configuration mistake:
`load_taxonomy` raises `TaxonomyError`; resolving names written by teams never raises.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from contract.errors import TaxonomyError
from parsers.crosswalk import Crosswalk, Direction, build_crosswalk, read_mapping
from parsers.fieldnames import normalise_key
from parsers.model import Classification
from parsers.vocabulary import (
    IncidentClass,
    IncidentType,
    Spec,
    Target,
    Vocabulary,
    build,
    merge,
    read_classes,
    read_header,
)

__all__ = [
    "ECSIRT",
    "RSIT",
    "Classification",
    "IncidentClass",
    "IncidentType",
    "Match",
    "Target",
    "Taxonomy",
    "TaxonomyError",
    "Vocabulary",
    "load_taxonomy",
]

ECSIRT = "ecsirt-v2"
RSIT = "rsit-1.3"
# The shipped vocabularies in the order names are resolved without a `Taxonomy:` line, and
# the extra file's section that extends each.
VOCABULARIES = (ECSIRT, RSIT)
EXTRA_SECTIONS = {"class": ECSIRT, "rsit_class": RSIT}
DEFAULT_CANONICAL = ECSIRT


@dataclass(frozen=True)
class Match:
    """A class/type as sent, and what it counts as in the canonical vocabulary."""

    sent: Classification
    counts_as: Classification
    exact: bool  # False: `counts_as` says less than `sent` (a coarser category)

    @property
    def target(self) -> Target:
        return self.counts_as.target


@dataclass(frozen=True)
class Taxonomy:
    """The vocabularies in resolution order, their mapping, and the canonical vocabulary."""

    vocabularies: tuple[Vocabulary, ...]
    crosswalk: Crosswalk
    canonical: str = DEFAULT_CANONICAL

    def vocabulary(self, vocabulary_id: str) -> Vocabulary:
        for vocabulary in self.vocabularies:
            if vocabulary.id == vocabulary_id:
                return vocabulary
        raise TaxonomyError(
            f"unknown taxonomy {vocabulary_id!r}; use one of {', '.join(self.ids())}"
        )

    def ids(self) -> tuple[str, ...]:
        return tuple(vocabulary.id for vocabulary in self.vocabularies)

    def named(self, written: str) -> Vocabulary | None:
        """The vocabulary a `Taxonomy:` line names (its id or an alias), or None."""
        wanted = normalise_key(written)
        for vocabulary in self.vocabularies:
            if wanted in {normalise_key(n) for n in (vocabulary.id, *vocabulary.aliases)}:
                return vocabulary
        return None

    def with_canonical(self, vocabulary_id: str) -> Taxonomy:
        """The same vocabularies, counting in `vocabulary_id` (TaxonomyError if unknown)."""
        return replace(self, canonical=self.vocabulary(vocabulary_id).id)

    # -- the canonical vocabulary: what statistics list and label ------------------------

    @property
    def canonical_vocabulary(self) -> Vocabulary:
        return self.vocabulary(self.canonical)

    @property
    def classes(self) -> tuple[IncidentClass, ...]:
        return self.canonical_vocabulary.classes

    def __iter__(self) -> Iterator[IncidentClass]:
        return iter(self.classes)

    def categories(self) -> Iterator[tuple[Target, str]]:
        """Every countable canonical (class, type) in report order, with its label."""
        return self.canonical_vocabulary.categories()

    def label(self, target: Target) -> str:
        """The canonical display name of a (class slug, type slug); unknown ones by slug."""
        return self.canonical_vocabulary.label_of(target)

    # -- names as teams write them ------------------------------------------------------

    def lookup(
        self, class_name: str, type_name: str | None, vocabulary: str | None = None
    ) -> Match | None:
        """What a written class/type was sent as and counts as; None if unknown.

        In `vocabulary` only when given, else in each vocabulary in resolution order.
        """
        searched = self.vocabularies if vocabulary is None else (self.vocabulary(vocabulary),)
        for candidate in searched:
            found = candidate.find(class_name, type_name)
            if found is not None:
                return self.counts_as(Classification(candidate.id, *found))
        return None

    def resolve(
        self, class_name: str, type_name: str | None, vocabulary: str | None = None
    ) -> Target | None:
        """The canonical (class slug, type slug) a written class/type counts as, or None."""
        match = self.lookup(class_name, type_name, vocabulary)
        return None if match is None else match.target

    def knows_class(self, class_name: str, vocabulary: str | None = None) -> bool:
        searched = self.vocabularies if vocabulary is None else (self.vocabulary(vocabulary),)
        return any(candidate.knows_class(class_name) for candidate in searched)

    # -- stored counts ------------------------------------------------------------------

    def counts_as(self, sent: Classification, stored: Classification | None = None) -> Match:
        """What `sent` counts as in the canonical vocabulary.

        `stored` is what it was counted as when it was stored: used where `sent` is no
        longer known (an extension was dropped). What neither explains stays as it was,
        shown by its slugs, rather than lost from the statistics.
        """
        known_ids = self.ids()
        for known in (sent, stored):
            if known is None or known.vocabulary not in known_ids:
                continue
            if not self.vocabulary(known.vocabulary).has(known.target):
                continue
            mapped = self.crosswalk.map(known.vocabulary, self.canonical, known.target)
            if mapped is not None:
                counted = Classification(self.canonical, *mapped.target)
                return Match(sent, counted, mapped.exact and known is sent)
        fallback = stored if stored is not None else sent
        return Match(sent, Classification(self.canonical, *fallback.target), False)

    def equivalents(self, sent: Classification) -> set[Classification]:
        """`sent` and what it is exactly in every other vocabulary (the same category)."""
        same = {sent}
        for other in self.vocabularies:
            mapped = self.crosswalk.map(sent.vocabulary, other.id, sent.target)
            if mapped is not None and mapped.exact:
                same.add(Classification(other.id, *mapped.target))
        return same


def load_taxonomy(extra: Path | None = None, canonical: str = DEFAULT_CANONICAL) -> Taxonomy:
    """The shipped vocabularies and mapping, extended by `extra` when given, counting in
    `canonical` ("ecsirt-v2" or "rsit-1.3")."""
    shipped = _shipped()
    added: dict[str, list[Spec]] = {vocabulary_id: [] for vocabulary_id in VOCABULARIES}
    if extra is not None:
        added = _read_extra(extra)
    vocabularies: dict[str, Vocabulary] = {}
    for vocabulary_id, (header, specs) in shipped.vocabularies.items():
        merged = merge(specs, added[vocabulary_id], str(extra))
        vocabularies[vocabulary_id] = build(header, merged)
    directions: dict[Direction, list[Spec]] = {
        (source, to): added[source]
        for source in VOCABULARIES
        for to in VOCABULARIES
        if to != source
    }
    crosswalk = build_crosswalk(shipped.mapping, vocabularies, directions)
    ordered = tuple(vocabularies[vocabulary_id] for vocabulary_id in VOCABULARIES)
    return Taxonomy(ordered, crosswalk).with_canonical(canonical)


@dataclass(frozen=True)
class _Shipped:
    vocabularies: dict[str, tuple[dict[str, Any], list[Spec]]]
    mapping: dict[Direction, Any]


@cache
def _shipped() -> _Shipped:
    """The shipped files, read and checked once per process (they never change)."""
    vocabularies: dict[str, tuple[dict[str, Any], list[Spec]]] = {}
    for vocabulary_id in VOCABULARIES:
        name = f"{vocabulary_id}.toml"
        data = _toml(name)
        header = read_header(data, name)
        if header["id"] != vocabulary_id:
            raise TaxonomyError(f"{name}: id must be {vocabulary_id!r}")
        vocabularies[vocabulary_id] = (header, read_classes(data.get("class", []), name))
    return _Shipped(vocabularies, read_mapping(_toml("mapping.toml"), "mapping.toml"))


def _toml(name: str) -> dict[str, Any]:
    text = resources.files("parsers").joinpath("taxonomies", name).read_text("utf-8")
    return tomllib.loads(text)


def _read_extra(extra: Path) -> dict[str, list[Spec]]:
    try:
        data = tomllib.loads(extra.read_text("utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"{extra}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:  # not UTF-8, not TOML, a NUL in the path
        raise TaxonomyError(f"{extra}: {exc}") from exc
    unknown = set(data) - set(EXTRA_SECTIONS)
    if unknown:
        raise TaxonomyError(f"{extra}: unknown section(s) {sorted(unknown)}")
    return {
        vocabulary_id: read_classes(data.get(section, []), f"{extra}: {section}")
        for section, vocabulary_id in EXTRA_SECTIONS.items()
    }
