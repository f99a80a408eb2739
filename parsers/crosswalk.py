"""How a class or type of one vocabulary counts in another, in both directions.

In: the entries of parsers/taxonomies/mapping.toml ([from, to, kind] per class and type,
the file documents the format), the built vocabularies, and the `maps_to` of classes and
types an extra file adds. Out: a frozen `Crosswalk` that says, for a (class, type) of one
vocabulary, which (class, type) of another it counts as and whether that is exact.

A mapping never claims more than its source says. Checked on load, for the shipped file
and extensions alike (a broken mapping raises `TaxonomyError`):
- every class and type of the source vocabulary has exactly one entry, onto a class or
  type the target vocabulary has;
- a class-only line maps onto a class-only line, and a type into the class its class maps
  to (a type with no counterpart counts under its class without a type);
- "exact" never maps a type onto a class-only line, and an exact entry maps back exactly
  onto where it came from.
An added class or type without `maps_to` counts under what its class maps to (a new class:
under Other), "coarser"; with `maps_to` it is exact only where the reverse maps back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.errors import TaxonomyError
from parsers.vocabulary import Spec, Target, Vocabulary

KINDS = ("exact", "coarser")
FALLBACK_CLASS = "other"  # where an added class with no `maps_to` counts
Direction = tuple[str, str]  # (from vocabulary id, to vocabulary id)


@dataclass(frozen=True)
class Mapped:
    """What a source (class, type) counts as in the target vocabulary."""

    target: Target
    exact: bool


@dataclass(frozen=True)
class Crosswalk:
    entries: Mapping[Direction, Mapping[Target, Mapped]]

    def map(self, source: str, to: str, key: Target) -> Mapped | None:
        """What `key` of vocabulary `source` counts as in `to` (None: not mapped)."""
        if source == to:
            return Mapped(key, True)
        return self.entries.get((source, to), {}).get(key)


def parse_target(text: str) -> Target:
    class_slug, _, type_slug = text.partition("/")
    return (class_slug, type_slug or None)


def read_mapping(data: dict[str, Any], where: str) -> dict[Direction, dict[Target, Mapped]]:
    """The entries of a mapping file, by direction (shapes checked, contents not yet)."""
    if set(data) != {"mapping"} or not isinstance(data["mapping"], list):
        raise TaxonomyError(f"{where}: expected only [[mapping]] tables")
    found: dict[Direction, dict[Target, Mapped]] = {}
    for table in data["mapping"]:
        if not isinstance(table, dict) or set(table) != {"from", "to", "entries"}:
            raise TaxonomyError(f"{where}: each [[mapping]] has from, to and entries")
        direction = (str(table["from"]), str(table["to"]))
        if direction in found:
            raise TaxonomyError(f"{where}: {direction[0]} -> {direction[1]} is given twice")
        entries = found[direction] = {}
        for entry in table["entries"]:
            if not (isinstance(entry, list) and len(entry) == 3 and entry[2] in KINDS):
                raise TaxonomyError(f"{where}: {entry!r} is not [from, to, exact|coarser]")
            key = parse_target(str(entry[0]))
            if key in entries:
                raise TaxonomyError(f"{where}: {entry[0]} is mapped twice")
            entries[key] = Mapped(parse_target(str(entry[1])), entry[2] == "exact")
    return found


def build_crosswalk(
    shipped: Mapping[Direction, Mapping[Target, Mapped]],
    vocabularies: Mapping[str, Vocabulary],
    added: Mapping[Direction, list[Spec]],
) -> Crosswalk:
    """The shipped entries, with the classes and types of `added` (per direction, the
    extension specs of its source vocabulary) mapped in; every rule checked."""
    entries = {direction: dict(found) for direction, found in shipped.items()}
    declared: dict[Direction, set[Target]] = {}
    for direction, specs in added.items():
        mine = entries.setdefault(direction, {})
        declared[direction] = _add_extensions(mine, specs, f"{direction[0]} extension")
    for direction, keys in declared.items():
        _judge_declared(entries, direction, keys)
    for (source, to), found in entries.items():
        if source not in vocabularies or to not in vocabularies:
            raise TaxonomyError(f"mapping {source} -> {to}: no such vocabulary")
        _check(found, vocabularies[source], vocabularies[to], entries.get((to, source), {}))
    return Crosswalk(entries)


def _add_extensions(entries: dict[Target, Mapped], specs: list[Spec], where: str) -> set[Target]:
    """Map each added class and type not mapped yet; the keys mapped by `maps_to`."""
    declared: set[Target] = set()
    for spec in specs:
        key: Target = (spec.slug, None)
        if key not in entries:
            fallback = Mapped((FALLBACK_CLASS, None), False)
            entries[key] = _declared(spec.maps_to, fallback)
            declared |= {key} if spec.maps_to else set()
        class_target = entries[key].target[0]
        for child in spec.children:
            child_key: Target = (spec.slug, child.slug)
            if child_key in entries:
                raise TaxonomyError(f"{where}: {spec.slug}/{child.slug} is already mapped")
            entries[child_key] = _declared(child.maps_to, Mapped((class_target, None), False))
            declared |= {child_key} if child.maps_to else set()
    return declared


def _declared(maps_to: str | None, fallback: Mapped) -> Mapped:
    # Provisionally exact: `_judge_declared` keeps it so only where the reverse maps back.
    return fallback if maps_to is None else Mapped(parse_target(maps_to), True)


def _judge_declared(
    entries: dict[Direction, dict[Target, Mapped]], direction: Direction, keys: set[Target]
) -> None:
    source, to = direction
    reverse = entries.get((to, source), {})
    for key in keys:
        mapped = entries[direction][key]
        back = reverse.get(mapped.target)
        specific = key[1] is None or mapped.target[1] is not None
        exact = specific and back is not None and back.target == key
        entries[direction][key] = Mapped(mapped.target, exact)


def _check(
    entries: Mapping[Target, Mapped],
    source: Vocabulary,
    to: Vocabulary,
    reverse: Mapping[Target, Mapped],
) -> None:
    where = f"mapping {source.id} -> {to.id}"
    keys = [key for key, _ in source.categories()]
    missing = [_shown(key) for key in keys if key not in entries]
    stray = [_shown(key) for key in entries if key not in set(keys)]
    if missing or stray:
        raise TaxonomyError(
            f"{where}: missing {missing or '-'}; not in {source.id}: {stray or '-'}"
        )
    for key, mapped in entries.items():
        _check_entry(key, mapped, entries, to, reverse, f"{where}: {_shown(key)}")


def _check_entry(
    key: Target,
    mapped: Mapped,
    entries: Mapping[Target, Mapped],
    to: Vocabulary,
    reverse: Mapping[Target, Mapped],
    where: str,
) -> None:
    target = mapped.target
    if not to.has(target):
        raise TaxonomyError(f"{where}: {_shown(target)} is not in {to.id}")
    if key[1] is None and target[1] is not None:
        raise TaxonomyError(f"{where}: a class-only line must map onto a class-only line")
    if key[1] is not None and target[0] != entries[(key[0], None)].target[0]:
        raise TaxonomyError(f"{where}: a type must map into the class its class maps to")
    if mapped.exact and key[1] is not None and target[1] is None:
        raise TaxonomyError(f"{where}: a type mapped onto its class alone is coarser")
    back = reverse.get(target)
    if mapped.exact and (back is None or not back.exact or back.target != key):
        raise TaxonomyError(f"{where}: exact, but {_shown(target)} does not map back exactly")


def _shown(key: Target) -> str:
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"
