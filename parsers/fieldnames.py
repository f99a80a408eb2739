"""Field names as teams write them: normalisation and the type 1 aliases.

In: a key exactly as written in a report (`Incidents-Opened`, `2) Incidents opened`,
`time spent`). Out: the canonical name of `parsers.model.TYPE1_FIELDS`, or None.

Keys are case-insensitive and `-`, `_` and spaces are equivalent (docs/reference.md,
"Report format"), so every comparison goes through `normalise_key`. The numbered labels
of the original eCSIRT.net form ("1) Total number of requests" ... "7) Time spent") are
accepted with or without their number; when the number is given it must be the field's
number on the form, so a label copied onto the wrong line is reported rather than
silently accepted.

Named `fieldnames` rather than `keys` so it is not confused with the OpenPGP `keys/`
package.
"""

from __future__ import annotations

import re

from parsers.model import TYPE1_FIELDS

# The header keys every report format shares, besides the figures themselves.
REPORT_KEY = "report"
PERIOD_KEY = "period"
TEAM_KEY = "team"
TAXONOMY_KEY = "taxonomy"  # type 2: the vocabulary its classes and types are named in
HEADER_KEYS = (REPORT_KEY, PERIOD_KEY, TEAM_KEY, TAXONOMY_KEY)

# The labels of the original form, in the order of TYPE1_FIELDS (seeds/002).
TYPE1_LABELS: dict[str, str] = {
    "requests": "1) Total number of requests",
    "incidents-opened": "2) Incidents opened",
    "incidents-closed": "3) Incidents closed",
    "inbound-communication": "4) Inbound incident related communication",
    "outbound-communication": "5) Outbound incident related communication",
    "organisations-involved": "6) Organizations involved",
    "hours-spent": "7) Time spent",
}

# Further natural spellings, without the form's number.
_VARIANTS: dict[str, tuple[str, ...]] = {
    "requests": ("total requests", "number of requests"),
    "incidents-opened": ("opened incidents",),
    "incidents-closed": ("closed incidents",),
    "inbound-communication": ("inbound", "inbound communications"),
    "outbound-communication": ("outbound", "outbound communications"),
    "organisations-involved": (
        "organisations involved",
        "organisations",
        "organizations",
    ),
    "hours-spent": ("time spent", "hours", "hours spent"),
}

_SEPARATORS = re.compile(r"[\s_\-]+")
_AROUND_SLASH = re.compile(r"-?/-?")
_NUMBERED = re.compile(r"^\s*([0-9]{1,2})\s*[).]\s*(.*)$", re.S)


def normalise_key(raw: str) -> str:
    """Case-fold and make `-`, `_` and runs of whitespace one `-` (also around `/`)."""
    folded = _SEPARATORS.sub("-", raw.strip().casefold())
    return _AROUND_SLASH.sub("/", folded).strip("-")


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, label in TYPE1_LABELS.items():
        names = (canonical, _NUMBERED.sub(r"\2", label), *_VARIANTS[canonical])
        for name in names:
            table[normalise_key(name)] = canonical
    return table


_ALIASES = _alias_table()


def type1_field(raw_key: str) -> str | None:
    """The canonical type 1 field a key names, or None if it names none."""
    numbered = _NUMBERED.match(raw_key)
    if numbered is None:
        return _ALIASES.get(normalise_key(raw_key))
    canonical = _ALIASES.get(normalise_key(numbered.group(2)))
    if canonical is None or form_number(canonical) != int(numbered.group(1)):
        return None
    return canonical


def misnumbered(raw_key: str) -> str | None:
    """The field a numbered label names when its number is wrong ("3) Incidents opened")."""
    numbered = _NUMBERED.match(raw_key)
    if numbered is None:
        return None
    canonical = _ALIASES.get(normalise_key(numbered.group(2)))
    if canonical is None or form_number(canonical) == int(numbered.group(1)):
        return None
    return canonical


def form_number(canonical: str) -> int:
    """The number of a type 1 field on the original form (requests is 1)."""
    return TYPE1_FIELDS.index(canonical) + 1
