"""JSON reports: single objects and lists, both count forms, and their errors."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from parsers.jsonfile import parse_json
from parsers.model import ParseOutcome, Type1Report, Type2Report
from parsers.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
TODAY = date(2026, 11, 15)

VALUES: dict[str, object] = {
    "requests": 1204,
    "incidents-opened": 311,
    "incidents-closed": 298,
    "inbound-communication": 1650,
    "outbound-communication": 1422,
    "organisations-involved": 187,
    "hours-spent": 940.5,
}
TYPE1: dict[str, object] = {"report": "type1", "period": "2026-10", "values": VALUES}
TYPE2: dict[str, object] = {
    "report": "type2",
    "period": "2026-10",
    "team": "CERT-EXAMPLE",
    "counts": {"Intrusions / Privileged Account Compromise": 3, "Other": 1},
}


def parse(document: object) -> ParseOutcome:
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    return parse_json(text, "stats.json", TODAY, TAXONOMY)


def errors(document: object) -> list[tuple[int | None, str]]:
    outcome = parse(document)
    assert not outcome.reports
    return [(e.line, e.message) for e in outcome.errors]


def test_single_type1_object() -> None:
    outcome = parse(TYPE1)
    assert outcome.ok
    report = outcome.reports[0]
    assert isinstance(report, Type1Report)
    assert report.values["hours-spent"] == Decimal("940.5")
    assert report.values["requests"] == Decimal(1204)
    assert report.source == "stats.json"


def test_list_with_both_count_forms() -> None:
    listed = {
        "report": "type2",
        "period": "2026-09",
        "counts": [
            {"class": "Intrusions", "type": "Privileged Account Compromise", "count": 3},
            {"class": "Other", "count": 1},
            {"class": "Fraud", "type": None, "count": "2"},
        ],
    }
    outcome = parse([TYPE1, TYPE2, listed])
    assert outcome.ok
    _, dict_form, list_form = outcome.reports
    assert isinstance(dict_form, Type2Report) and isinstance(list_form, Type2Report)
    assert dict_form.claimed_team == "CERT-EXAMPLE"
    expected = {("intrusions", "privileged-account-compromise"): 3, ("other", None): 1}
    assert dict_form.counts == expected
    assert list_form.counts == {**expected, ("fraud", None): 2}


def test_syntax_error_has_its_line() -> None:
    assert errors('[\n  {"report": "type1",\n  "period" "2026-10"}\n]') == [
        (3, "this is not valid JSON (Expecting ':' delimiter)")
    ]


def test_messages_in_a_list_name_the_report() -> None:
    bad = {**TYPE2, "counts": {"Other": -1}}
    assert errors([TYPE1, bad]) == [(None, 'report 2: "Other" must not be negative')]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({**TYPE1, "colour": "red"}, 'unknown member "colour"; use report, period, team'),
        ({"period": "2026-10", "values": VALUES}, 'the "report" member (type1 or type2) is'),
        ({**TYPE1, "period": 202610}, 'the period "202610" is not a month'),
        ({**TYPE1, "period": ["2026-10"]}, 'the period "a list" is not a month'),
        ({**TYPE2, "counts": {"Other": True}}, '"Other" must be a whole number, not "true"'),
        ({**TYPE2, "counts": {"Other": None}}, '"Other" must be a whole number, not "null"'),
        ({**TYPE2, "counts": {"Other": {}}}, '"Other" must be a whole number, not "an object"'),
        ({**TYPE2, "counts": [{"class": "Other"}]}, '"Other" must be a whole number, not "null"'),
        ({**TYPE2, "counts": {"Other": 1.0}}, '"Other" must be a whole number, not "1.0"'),
        ({**TYPE2, "counts": {"Other": 1e3}}, '"Other" must be a whole number, not "1000.0"'),
        ({**TYPE2, "counts": "many"}, 'the member "counts" must be an object'),
        ({**TYPE2, "counts": [5]}, 'each entry of "counts" must be an object'),
        ({**TYPE2, "counts": [{"class": "Other", "n": 1}]}, 'an entry of "counts" may only'),
        ({**TYPE2, "counts": [{"class": 1, "count": 1}]}, 'an entry of "counts" needs "class"'),
        ({**TYPE2, "counts": [{"class": "x", "type": 1, "count": 1}]}, 'an entry of "counts"'),
        ({**TYPE2, "report": 2}, 'the "report" member (type1 or type2) is missing'),
        ({**TYPE2, "counts": {"Bogus": 1}}, 'unknown incident class "Bogus"'),
        ({**TYPE1, "values": {**VALUES, "extra": 1}}, 'unknown field "extra" in a type 1'),
        ({**TYPE1, "period": "2026-12"}, "the period 2026-12 is in the future"),
        ({**TYPE1, "report": "type9"}, 'unknown report type "type9"'),
        ([], "the JSON file holds no report (the list is empty)"),
        ("42", "the JSON file must hold a report object or a list of them"),
        ([1], "report 1: each report must be a JSON object"),
    ],
)
def test_errors(document: object, expected: str) -> None:
    found = errors(document)
    assert len(found) == 1, found
    assert found[0][0] is None
    assert found[0][1].startswith(expected), found


def test_team_is_recorded_as_written() -> None:
    assert parse({**TYPE2, "team": 5}).reports[0].claimed_team == "5"


def test_missing_values_are_missing_fields() -> None:
    assert errors({"report": "type1", "period": "2026-10"}) == [
        (None, "the type 1 report lacks " + ", ".join(VALUES))
    ]


def test_duplicate_members_are_errors() -> None:
    text = '{"report": "type2", "period": "2026-10", "counts": {"Other": 1, "other": 2}}'
    assert errors(text) == [(None, '"other" is counted twice')]
    text = '{"report": "type2", "report": "type2", "period": "2026-10", "counts": {"Other": 1}}'
    assert errors(text) == [(None, 'the member "report" is given twice')]


def test_deep_nesting_and_size() -> None:
    assert errors("[" * 100_000 + "]" * 100_000)[0][1] in (
        "the JSON file is nested too deeply to be a report",
        "the JSON file is larger than 1024 KiB",
    )
    assert errors("[" * 50_000)[0][1] == "the JSON file is nested too deeply to be a report"
    assert errors(" " * (1024 * 1024 + 1)) == [(None, "the JSON file is larger than 1024 KiB")]


def test_numbers_keep_their_written_form() -> None:
    huge = "9" * 5000
    found = errors(f'{{"report": "type2", "period": "2026-10", "counts": {{"Other": {huge}}}}}')
    assert found == [(None, '"Other" is too large (more than 12 digits)')]
