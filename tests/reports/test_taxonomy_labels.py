"""What receipts, status replies, the CSV and the PDFs say about the type 2 taxonomy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from parsers.model import Classification, Type2Report
from parsers.taxonomy import ECSIRT, RSIT, load_taxonomy
from parsers.text import parse_text
from reports.mail import ShownValue
from reports.statistics import compute
from reports.taxonomy_labels import (
    ShownCount,
    shown_counts,
    shown_values,
    taxonomy_caption,
    taxonomy_cell,
)
from store.type2 import StoredCount

TAXONOMY = load_taxonomy()
IN_RSIT = TAXONOMY.with_canonical(RSIT)
MIXED = """Report: type2
Period: 2026-10
Malicious Code / Virus: 12
malicious-code/infected-system: 6
Intrusion Attempts / Login attempts: 4
fraud/phishing: 3
"""


def parsed(text: str = MIXED) -> Type2Report:
    (report,) = parse_text(text, "body", date(2026, 11, 2), TAXONOMY).reports
    assert isinstance(report, Type2Report)
    return report


def test_receipts_show_what_was_sent_and_what_it_counts_as_where_they_differ() -> None:
    shown = shown_counts(parsed().lines, TAXONOMY)
    assert [s.text() for s in shown] == [
        "Malicious Code / Virus: 12",
        "Malicious Code / Infected System (RSIT 1.3): 6,"
        " counts as Malicious Code, type not given (eCSIRT.net v2)",
        "Intrusion Attempts / Login attempts: 4",
        "Fraud / Phishing (RSIT 1.3): 3, counts as Fraud / Masquerade (eCSIRT.net v2)",
    ]
    assert [s.exact for s in shown] == [True, False, True, False]


def test_in_rsit_ecsirt_counts_say_what_they_count_as() -> None:
    shown = shown_counts(parsed().lines, IN_RSIT)
    assert shown[0] == ShownCount(
        "Malicious Code / Virus (eCSIRT.net v2)",
        12,
        "Malicious Code, type not given (RSIT 1.3)",
        False,
    )
    assert shown[1].text() == "Malicious Code / Infected System: 6"
    assert shown[2].text() == (
        "Intrusion Attempts / Login attempts (eCSIRT.net v2): 4,"
        " counts as Intrusion Attempts / Login Attempts (RSIT 1.3)"
    )
    assert shown[2].exact


def test_stored_counts_are_shown_as_recounted() -> None:
    stored = StoredCount(
        Classification(RSIT, "vulnerable", "weak-crypto"), Classification(ECSIRT, "other"), 2
    )
    (in_ecsirt,) = shown_counts([stored], TAXONOMY)
    assert in_ecsirt.text() == (
        "Vulnerable / Weak Cryptography (RSIT 1.3): 2, counts as Other, type not given"
        " (eCSIRT.net v2)"
    )
    (in_rsit,) = shown_counts([stored], IN_RSIT)
    assert in_rsit.text() == "Vulnerable / Weak Cryptography: 2"


def test_the_csv_and_the_pdfs_name_the_taxonomy_and_its_version() -> None:
    stats = compute([], "2026-10", IN_RSIT, minimum=3, secret=b"k" * 32)
    assert taxonomy_cell(stats, "type2") == "rsit-1.3"
    assert taxonomy_cell(stats, "type1") == ""
    assert taxonomy_caption(stats) == (
        "Incident classes and types: RSIT 1.3 (ENISA Reference Security Incident Taxonomy,"
        " machine-readable version 1003)."
    )
    in_ecsirt = compute([], "2026-10", TAXONOMY, minimum=3, secret=b"k" * 32)
    assert taxonomy_caption(in_ecsirt) == (
        "Incident classes and types: eCSIRT.net v2 (eCSIRT.net incident classification)."
    )


def test_shown_values_list_type2_counts_as_sent_and_type1_fields_as_stored() -> None:
    report = parsed("Report: type2\nPeriod: 2026-10\nfraud/phishing: 3\nOther: 1\n")
    assert shown_values({"fraud/masquerade": 3, "other": 1}, report.lines, TAXONOMY) == [
        ShownValue("Fraud / Phishing (RSIT 1.3)", "3", "Fraud / Masquerade (eCSIRT.net v2)"),
        ShownValue("Other", "1", None),
    ]
    type1 = {"requests": Decimal(1204), "hours-spent": Decimal("940.5")}
    assert shown_values(type1, (), TAXONOMY) == [
        ShownValue("requests", "1204"),
        ShownValue("hours-spent", "940.5"),
    ]
