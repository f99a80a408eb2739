"""CSV reports: the documented format, and errors located by CSV line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from parsers.model import ParseOutcome, Type1Report, Type2Report
from parsers.table import parse_csv
from parsers.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
TODAY = date(2026, 11, 15)

CSV = """report,period,key,value
type1,2026-10,Requests,1204
type1,2026-10,Incidents-Opened,311
type1,2026-10,Incidents-Closed,298
type1,2026-10,Inbound-Communication,1650
type1,2026-10,Outbound-Communication,1422
type1,2026-10,Organisations-Involved,187
type1,2026-10,Hours-Spent,940.5
type2,2026-10,Malicious Code / Virus,12
type2,2026-10,Other,1
type2,2026-10,Team,CERT-EXAMPLE
"""


def parse(text: str) -> ParseOutcome:
    return parse_csv(text, "stats.csv", TODAY, TAXONOMY)


def errors(text: str) -> list[tuple[int | None, str]]:
    outcome = parse(text)
    assert not outcome.reports
    assert all(e.source == "stats.csv" for e in outcome.errors)
    return [(e.line, e.message) for e in outcome.errors]


def test_documented_example() -> None:
    outcome = parse(CSV)
    assert outcome.ok
    type1, type2 = outcome.reports
    assert isinstance(type1, Type1Report) and isinstance(type2, Type2Report)
    assert type1.values["hours-spent"] == Decimal("940.5")
    assert type1.source == "stats.csv"
    assert type2.counts == {("malicious-code", "virus"): 12, ("other", None): 1}
    assert type2.claimed_team == "CERT-EXAMPLE"
    assert type1.claimed_team is None


def test_semicolons_quotes_header_order_and_crlf() -> None:
    text = (
        '\ufeffKey;VALUE;Period;Report\r\n"Information Gathering / Scanning";"7";2026-10;type2\r\n'
        "# a comment row;;;\r\n;;;\r\nIntrusions;2;2026-10;Type 2;;\r\n"
    )
    outcome = parse(text)
    assert outcome.ok
    assert outcome.reports[0].counts == {  # type: ignore[union-attr]
        ("information-gathering", "scanning"): 7,
        ("intrusions", None): 2,
    }


def test_rows_of_one_report_need_not_be_adjacent() -> None:
    lines = CSV.splitlines()
    text = "\n".join([lines[0], lines[8], *lines[1:8], *lines[9:]]) + "\n"
    assert parse(text).ok


def test_missing_field_points_at_first_row_of_report() -> None:
    text = CSV.replace("type1,2026-10,Requests,1204\n", "")
    assert errors(text) == [(2, "the type 1 report lacks requests")]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Hours-Spent,940.5", "Hours-Spent,-3", (8, '"hours-spent" must not be negative')),
        ("Other,1", "Other,x", (10, '"Other" must be a whole number, not "x"')),
        ("Other,1", "Bogus,1", (10, 'unknown incident class "Bogus"; the classes are')),
        ("Team,CERT-EXAMPLE", "Team", (11, 'this row does not have the 4 columns "report,')),
        ("Team,CERT-EXAMPLE", "Team,x,y", (11, 'this row does not have the 4 columns "report,')),
        ("Other,1", "Other,1\ntype2,2026-10,other,2", (11, '"other" is counted twice')),
        ("type2,2026-10,Other", "type3,2026-10,Other", (10, 'unknown report type "type3"')),
    ],
)
def test_errors_with_row_numbers(old: str, new: str, expected: tuple[int, str]) -> None:
    found = errors(CSV.replace(old, new))
    assert len(found) == 1, found
    assert found[0][0] == expected[0]
    assert found[0][1].startswith(expected[1])


def test_period_errors_point_at_first_row() -> None:
    text = CSV.replace("type2,2026-10", "type2,2027-01")
    expected = "the period 2027-01 is in the future; reports can be sent for the current month"
    assert errors(text) == [(9, expected + " or earlier months")]


def test_header_is_required() -> None:
    assert errors("\n\ntype1,2026-10,requests,1\n") == [
        (3, 'the first row must be the header "report,period,key,value"')
    ]


def test_empty_file() -> None:
    assert errors("") == [
        (None, 'the CSV file holds no report; see the header "report,period,key,value"')
    ]
    assert errors("report,period,key,value\n")[0][1].startswith("the CSV file holds no report")


def test_unclosed_quote() -> None:
    text = CSV + 'type2,2026-10,"Fraud,3\nmore\n'
    assert errors(text) == [(12, "this row is not valid CSV (perhaps a quote is not closed)")]


def test_multiline_quoted_field_keeps_row_numbers() -> None:
    text = CSV.replace("Other,1", '"Other\n",1') + "type2,2026-10,Nope,1\n"
    ((line, message),) = errors(text)
    assert line == 13
    assert message.startswith('unknown incident class "Nope"; the classes are Abusive Content,')
    assert message.endswith(", Fraud, Other (eCSIRT.net v2), and those of RSIT 1.3")


def test_too_large() -> None:
    assert errors(CSV + "#" * (1024 * 1024))[0] == (
        None,
        "the CSV file is larger than 1024 KiB and was not read",
    )


def test_report_over_ten_thousand_rows() -> None:
    text = "report,period,key,value\n" + "type2,2026-10,Other,1\n" * 10_001
    assert errors(text) == [(2, "the report has more than 10000 rows and was not read")]
