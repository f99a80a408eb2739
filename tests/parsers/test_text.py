"""Plain-text reports: valid reports, every error kind with its line, the size guards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from parsers.drafts import ECHO, MAX_ERRORS
from parsers.model import TYPE1_FIELDS, ParseOutcome, ReportError, Type1Report, Type2Report
from parsers.taxonomy import load_taxonomy
from parsers.template import blank_report
from parsers.text import has_report_line, parse_text

TAXONOMY = load_taxonomy()
TODAY = date(2026, 11, 15)

TYPE1 = """Report: type1
Period: 2026-10
Requests: 1204
Incidents-Opened: 311
Incidents-Closed: 298
Inbound-Communication: 1650
Outbound-Communication: 1422
Organisations-Involved: 187
Hours-Spent: 940.5
"""

TYPE2 = """Report: type2
Period: 2026-10
Abusive Content / Spam: 120
Intrusion Attempts / Login attempts: 43
Intrusions: 3
Malicious Code / Virus: 12
Other: 1
"""

TYPE1_VALUES = {
    "requests": Decimal(1204),
    "incidents-opened": Decimal(311),
    "incidents-closed": Decimal(298),
    "inbound-communication": Decimal(1650),
    "outbound-communication": Decimal(1422),
    "organisations-involved": Decimal(187),
    "hours-spent": Decimal("940.5"),
}


def parse(text: str) -> ParseOutcome:
    return parse_text(text, "body", TODAY, TAXONOMY)


def errors(text: str) -> list[tuple[int | None, str]]:
    outcome = parse(text)
    assert not outcome.reports
    return [(e.line, e.message) for e in outcome.errors]


def only_error(text: str) -> tuple[int | None, str]:
    found = errors(text)
    assert len(found) == 1, found
    return found[0]


def test_spec_type1_example() -> None:
    outcome = parse(TYPE1)
    assert outcome.ok
    assert outcome.reports == (Type1Report("2026-10", TYPE1_VALUES),)


def test_spec_type2_example() -> None:
    outcome = parse(TYPE2)
    assert outcome.ok
    counts = {
        ("abusive-content", "spam"): 120,
        ("intrusion-attempts", "login-attempts"): 43,
        ("intrusions", None): 3,
        ("malicious-code", "virus"): 12,
        ("other", None): 1,
    }
    (report,) = outcome.reports
    assert isinstance(report, Type2Report)
    assert (report.period, report.counts, report.taxonomy) == ("2026-10", counts, "ecsirt-v2")
    # sent in the canonical vocabulary: each line counts as what it says
    assert report.lines == report.count_lines()
    assert [line.sent.key for line in report.lines] == [
        "abusive-content/spam",
        "intrusion-attempts/login-attempts",
        "intrusions",
        "malicious-code/virus",
        "other",
    ]


def test_several_reports_in_one_text() -> None:
    text = "# our monthly figures\n\n" + TYPE1 + "\n" + TYPE2 + TYPE1.replace("2026-10", "2026-09")
    outcome = parse(text)
    assert outcome.ok
    assert [(r.type, r.period) for r in outcome.reports] == [
        ("type1", "2026-10"),
        ("type2", "2026-10"),
        ("type1", "2026-09"),
    ]


def test_form_labels_as_keys() -> None:
    text = """report: TYPE 1
period: 2026-10
1) Total number of requests: 1204
2) Incidents opened: 311
Incidents closed: 298
4) Inbound incident related communication: 1650
outbound_communication: 1422
6) Organizations involved: 187
Time spent: 940.5
"""
    outcome = parse(text)
    assert outcome.ok
    assert outcome.reports[0].values == TYPE1_VALUES  # type: ignore[union-attr]


def test_blank_comment_and_crlf_lines() -> None:
    text = TYPE1.replace("\n", "\r\n").replace("Requests:", "# a note\r\n\r\n  Requests:")
    assert parse(text).ok
    broken = text.replace("Hours-Spent: 940.5", "Hours-Spent: lots")
    assert only_error(broken)[0] == 11


def test_team_line_is_recorded_not_trusted() -> None:
    outcome = parse(TYPE1.replace("Period:", "Team: CERT-Example\nPeriod:"))
    assert outcome.reports[0].claimed_team == "CERT-Example"
    assert parse(TYPE1).reports[0].claimed_team is None
    assert parse(TYPE2 + "team: x\n").reports[0].claimed_team == "x"


def test_a_team_line_before_the_first_report_counts_for_each_report() -> None:
    # The contract: a Team: line is ignored in favour of the signing key's team; written above the
    # reports it is not stray text either, and every report below without its own has it.
    outcome = parse("Team: CERT-Example\n\n" + TYPE1 + "\n" + TYPE2 + "Team: other\n")
    assert outcome.ok, outcome.errors
    assert [r.claimed_team for r in outcome.reports] == ["CERT-Example", "other"]
    stray = only_error("Dear clearinghouse,\nTeam: CERT-Example\n" + TYPE1)
    assert stray[0] == 1


def test_signature_below_separator_is_ignored() -> None:
    assert parse(TYPE2 + "-- \nAlice Example\nCERT-Example\n").ok


@pytest.mark.parametrize("period", ["2026-10", "2026-11", "1990-01", "2025-12"])
def test_past_and_current_months_are_valid(period: str) -> None:
    assert parse(TYPE2.replace("2026-10", period)).ok


@pytest.mark.parametrize("period", ["2026-12", "2027-01", "9999-12"])
def test_future_months_are_invalid(period: str) -> None:
    line, message = only_error(TYPE2.replace("2026-10", period))
    assert line == 2
    assert "in the future" in message


@pytest.mark.parametrize(
    "period", ["2026-13", "2026-00", "2026-1", "26-10", "2026/10", "October", "", "1989-12",
               "2026-10-01", "２０２６-10"],
)  # fmt: skip
def test_invalid_periods(period: str) -> None:
    line, message = only_error(TYPE2.replace("2026-10", period))
    assert line == 2
    assert "YYYY-MM" in message


def test_missing_period_points_at_report_line() -> None:
    assert only_error("\n" + TYPE2.replace("Period: 2026-10\n", "")) == (
        2,
        "the period is missing; give the month as YYYY-MM",
    )


def test_duplicated_period() -> None:
    assert only_error(TYPE2 + "Period: 2026-09\n") == (
        8,
        '"period" is given twice (first on line 2)',
    )


@pytest.mark.parametrize("index", range(len(TYPE1_FIELDS)))
def test_each_missing_type1_field_points_at_report_line(index: int) -> None:
    lines = TYPE1.splitlines()
    del lines[2 + index]
    text = "# header\n" + "\n".join(lines)
    assert only_error(text) == (2, f"the type 1 report lacks {TYPE1_FIELDS[index]}")


def test_all_missing_fields_in_one_error() -> None:
    line, message = only_error("Report: type1\nPeriod: 2026-10\nRequests: 1\n")
    assert line == 1
    assert message.endswith(", ".join(TYPE1_FIELDS[1:]))


def test_unknown_type1_key() -> None:
    (report_line, lacks), (line, message) = errors(TYPE1.replace("Requests:", "Reqeusts:"))
    assert (report_line, lacks) == (1, "the type 1 report lacks requests")
    assert line == 3
    assert message.startswith('unknown field "Reqeusts" in a type 1 report; the fields are')


def test_misnumbered_label() -> None:
    text = TYPE1.replace("Incidents-Opened:", "3) Incidents opened:")
    assert errors(text)[1] == (
        4,
        '"3) Incidents opened" has the wrong number: on the form it is "2) Incidents opened"',
    )


def test_duplicated_type1_key_by_alias() -> None:
    text = TYPE1 + "1) Total number of requests: 5\n"
    assert only_error(text) == (10, '"requests" is given twice (first on line 3)')


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-3", '"requests" must not be negative'),
        ("- 3", '"requests" must not be negative'),
        ("3.5", '"requests" must be a whole number, not "3.5"'),
        ("many", '"requests" must be a whole number, not "many"'),
        ("", '"requests" must be a whole number, not ""'),
        ("1,204", '"requests" must be a whole number, not "1,204"'),
        ("+3", '"requests" must be a whole number, not "+3"'),
        ("١٢", '"requests" must be a whole number, not "١٢"'),
        ("1234567890123", '"requests" is too large (more than 12 digits)'),
    ],
)
def test_bad_type1_counts(value: str, expected: str) -> None:
    assert only_error(TYPE1.replace("1204", value)) == (3, expected)


@pytest.mark.parametrize("hours", ["0", "940", "940.5", "940.25", "0.01", "007"])
def test_valid_hours(hours: str) -> None:
    outcome = parse(TYPE1.replace("940.5", hours))
    assert outcome.reports[0].values["hours-spent"] == Decimal(hours)  # type: ignore[union-attr]


@pytest.mark.parametrize("hours", ["940.255", "940,5", "940.", ".5", "1e3", "-1", "NaN"])
def test_invalid_hours(hours: str) -> None:
    line, message = only_error(TYPE1.replace("940.5", hours))
    assert line == 9
    assert message.startswith('"hours-spent" must')


def test_every_class_in_a_type2_report() -> None:
    lines = [f"{cls.name}: {n}" for n, cls in enumerate(TAXONOMY)]
    outcome = parse("Report: type2\nPeriod: 2026-10\n" + "\n".join(lines))
    assert outcome.reports[0].counts == {  # type: ignore[union-attr]
        (cls.slug, None): n for n, cls in enumerate(TAXONOMY)
    }


def test_every_type_in_a_type2_report_by_slug() -> None:
    lines = [f"{c.slug}/{t.slug}: 1" for c in TAXONOMY for t in c.types]
    outcome = parse("Report: type2\nPeriod: 2026-10\n" + "\n".join(lines))
    assert len(outcome.reports[0].counts) == len(lines)  # type: ignore[union-attr]


def test_rsit_names_in_a_type2_report_are_added_up() -> None:
    text = TYPE2 + "Malicious Code / Infected System: 4\nMalicious Code / C2 Server: 2\n"
    text += "Malicious Code: 1\nFraud / Phishing: 5\nVulnerable / Weak crypto: 2\n"
    counts = parse(text).reports[0].counts  # type: ignore[union-attr]
    assert counts[("malicious-code", None)] == 7
    assert counts[("fraud", "masquerade")] == 5
    assert counts[("other", None)] == 3


def test_unknown_class_names_the_class() -> None:
    line, message = only_error(TYPE2 + "Malware / Virus: 3\n")
    assert line == 8
    assert message.startswith('unknown incident class "Malware"; the classes are Abusive Content')


def test_unknown_type_names_type_and_class() -> None:
    assert only_error(TYPE2 + "Fraud / Virus: 3\n") == (
        8,
        'unknown incident type "Virus" in class "Fraud"',
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Other / Other: 1", '"Other / Other" is counted twice (first on line 7)'),
        ("other: 2", '"other" is counted twice (first on line 7)'),
        ("Malicious_Code/VIRUS: 1", '"Malicious_Code/VIRUS" is counted twice (first on line 6)'),
    ],
)
def test_same_class_type_twice(line: str, expected: str) -> None:
    text = TYPE2 + line + "\n"
    if line.startswith("Other / Other"):  # RSIT's Other/Other, then RSIT's again
        text = TYPE2.replace("Other: 1", "Other/Uncategorised: 1") + line + "\n"
    assert only_error(text) == (8, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", '"Other" must not be negative'),
        ("one", '"Other" must be a whole number, not "one"'),
        ("1.0", '"Other" must be a whole number, not "1.0"'),
    ],
)
def test_bad_type2_counts(value: str, expected: str) -> None:
    assert only_error(TYPE2.replace("Other: 1", f"Other: {value}")) == (7, expected)


def test_type2_without_counts() -> None:
    assert only_error("Report: type2\nPeriod: 2026-10\n")[0] == 1


def test_line_that_is_not_key_value() -> None:
    assert only_error(TYPE2 + "Spam 12\n") == (
        8,
        'this line is not of the form "Key: value": "Spam 12"',
    )
    assert only_error(TYPE2 + ": 12\n")[0] == 8


def test_text_before_the_first_report_line() -> None:
    text = "# fine\n\nHello, here are our figures.\nMore prose.\n" + TYPE2
    line, message = only_error(text)
    assert line == 3
    assert message.startswith('text before the first "Report:" line')


def test_unknown_report_type() -> None:
    assert only_error(TYPE2.replace("type2", "type3")) == (
        1,
        'unknown report type "type3"; use type1 or type2',
    )


def test_report_with_no_lines() -> None:
    assert errors("Report: type1\n# nothing yet\n\n" + TYPE2) == [(1, "the report is empty")]


def test_two_reports_of_same_type_and_period() -> None:
    line, message = only_error(TYPE2 + "\n" + TYPE2)
    assert line == 9
    assert message.startswith("a second type 2 report for 2026-10 (the first is in body, line 1)")


def test_errors_are_listed_in_line_order_across_reports() -> None:
    text = TYPE1.replace("311", "x") + "bogus line\n" + TYPE2.replace("Other: 1", "Nope: 1")
    assert [line for line, _ in errors(text)] == [4, 10, 17]


def test_one_bad_report_rejects_all() -> None:
    outcome = parse(TYPE1 + TYPE2.replace("Virus: 12", "Virus: -12"))
    assert outcome.reports == ()
    assert not outcome.ok
    assert outcome.errors == (
        ReportError("body", 15, '"Malicious Code / Virus" must not be negative'),
    )


def test_messages_quote_at_most_echo_characters() -> None:
    hostile = "A" * 5000 + "\x1b[31m"
    for text in (TYPE2 + hostile + ": 1\n", TYPE2 + hostile + "\n", TYPE1.replace("1204", hostile)):
        (_, message), *_ = errors(text)
        assert "A" * (ECHO + 1) not in message
        assert "\x1b" not in message
        assert len(message) < 400


def test_error_list_is_capped() -> None:
    text = TYPE2 + "no colon here\n" * (MAX_ERRORS + 50)
    found = errors(text)
    assert len(found) == MAX_ERRORS + 1
    assert found[-1] == (
        None,
        f"more than {MAX_ERRORS} problems; only the first {MAX_ERRORS} are listed",
    )


def test_text_over_one_mebibyte_is_one_error() -> None:
    text = TYPE2 + "# padding\n" * 110_000
    assert len(text) > 1024 * 1024
    assert errors(text) == [(None, "the text is larger than 1024 KiB and was not read")]
    assert errors(TYPE2 + "é" * 600_000) == [
        (None, "the text is larger than 1024 KiB and was not read")
    ]


def test_report_over_ten_thousand_lines_is_one_error() -> None:
    text = TYPE1 + TYPE2 + "\n" * 10_000
    assert errors(text) == [(10, "the report has more than 10000 lines and was not read")]
    assert parse(TYPE1 + TYPE2 + "\n" * 9_000).ok


def test_has_report_line() -> None:
    assert has_report_line("hello\n report : type1\n")
    assert not has_report_line("Reported: yes\nReport type1\n")


def test_an_untouched_template_is_one_error_and_empty_type2_lines_count_nothing() -> None:
    blank2 = blank_report("type2", load_taxonomy(), "2026-10")
    blank1 = blank_report("type1", load_taxonomy(), "2026-10")
    for blank in (blank1, blank2):
        line, message = only_error(blank)
        assert "no value is filled in" in message
    partly = blank2.replace("Intrusions:", "Intrusions: 3", 1)
    outcome = parse(partly)
    assert outcome.ok, outcome.errors
    [report] = outcome.reports
    assert isinstance(report, Type2Report) and sum(report.counts.values()) == 3
