"""Type 1 field names: canonical names, the form's numbered labels, natural variants."""

from __future__ import annotations

import pytest

from parsers.fieldnames import misnumbered, normalise_key, type1_field
from parsers.model import TYPE1_FIELDS

FORM_LABELS = [
    ("1) Total number of requests", "requests"),
    ("2) Incidents opened", "incidents-opened"),
    ("3) Incidents closed", "incidents-closed"),
    ("4) Inbound incident related communication", "inbound-communication"),
    ("5) Outbound incident related communication", "outbound-communication"),
    ("6) Organizations involved", "organisations-involved"),
    ("6) Organisations involved", "organisations-involved"),
    ("7) Time spent", "hours-spent"),
]


@pytest.mark.parametrize("name", TYPE1_FIELDS)
def test_canonical_names(name: str) -> None:
    assert type1_field(name) == name
    assert type1_field(name.upper()) == name
    assert type1_field(name.replace("-", "_")) == name
    assert type1_field(name.replace("-", " ")) == name


@pytest.mark.parametrize(("label", "name"), FORM_LABELS)
def test_form_labels_with_and_without_number(label: str, name: str) -> None:
    assert type1_field(label) == name
    assert type1_field(label.split(") ", 1)[1]) == name
    assert type1_field(label.replace(")", ".")) == name
    assert type1_field(label.lower().replace(" ", "-")) == name


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("organizations-involved", "organisations-involved"),
        ("Organisations", "organisations-involved"),
        ("organizations", "organisations-involved"),
        ("time-spent", "hours-spent"),
        ("Hours", "hours-spent"),
        ("hours spent", "hours-spent"),
        ("Total requests", "requests"),
        ("Inbound", "inbound-communication"),
        ("outbound_communications", "outbound-communication"),
        ("Opened incidents", "incidents-opened"),
    ],
)
def test_natural_variants(written: str, name: str) -> None:
    assert type1_field(written) == name


@pytest.mark.parametrize("written", ["", "incidents", "3) Incidents opened", "8) Time spent", "x"])
def test_unknown_or_misnumbered(written: str) -> None:
    assert type1_field(written) is None


def test_misnumbered_names_the_field_meant() -> None:
    assert misnumbered("3) Incidents opened") == "incidents-opened"
    assert misnumbered("2) Incidents opened") is None
    assert misnumbered("Incidents opened") is None


def test_normalise_key() -> None:
    assert normalise_key("  Hours_Spent ") == "hours-spent"
    assert normalise_key("a -_ b") == "a-b"
    assert normalise_key("Malicious Code / Virus") == "malicious-code/virus"
