"""Type 2 statistics in the canonical vocabulary: one team reports in RSIT 1.3, two in
eCSIRT.net v2; the averages in each canonical setting are computed here by hand, and
switching the canonical vocabulary recounts earlier months from what was sent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import Engine
from statistics_data import add_team, at, store

from parsers.model import Type2Report
from parsers.taxonomy import ECSIRT, RSIT, Taxonomy, load_taxonomy
from parsers.text import parse_text
from reports.periods import window
from reports.statistics import MonthlyStatistics, compute
from store.db import open_session
from store.statistics import newest_reports

PERIOD = "2026-10"
TAXONOMY = load_taxonomy()  # what the reports were stored with
RSIT_OCTOBER = """Report: type2
Period: 2026-10
Taxonomy: rsit-1.3
malicious-code/infected-system: 6
malicious-code/c2-server: 3
fraud/phishing: 4
vulnerable/weak-crypto: 2
intrusion-attempts/brute-force: 10
"""
B_OCTOBER = """Report: type2
Period: 2026-10
Malicious Code / Virus: 9
Fraud / Masquerade: 2
Intrusion Attempts / Login attempts: 5
"""
C_OCTOBER = "Report: type2\nPeriod: 2026-10\nOther: 3\nIntrusion Attempts / Login attempts: 15\n"
RSIT_SEPTEMBER = "Report: type2\nPeriod: 2026-09\nTaxonomy: rsit-1.3\ntest/test: 4\n"
B_SEPTEMBER = "Report: type2\nPeriod: 2026-09\nOther: 2\n"


def parsed(text: str) -> Type2Report:
    (report,) = parse_text(text, "body", date(2026, 11, 2), TAXONOMY).reports
    assert isinstance(report, Type2Report)
    return report


@pytest.fixture
def stored(engine: Engine) -> Engine:
    a, b, c = (add_team(engine, handle) for handle in ("alpha", "bravo", "charlie"))
    for team, text in ((a, RSIT_OCTOBER), (b, B_OCTOBER), (c, C_OCTOBER),
                       (a, RSIT_SEPTEMBER), (b, B_SEPTEMBER)):  # fmt: skip
        store(engine, team, parsed(text), at("2026-11-02"))
    return engine


def statistics(engine: Engine, taxonomy: Taxonomy) -> MonthlyStatistics:
    months = window(PERIOD)
    with open_session(engine) as s:
        found = newest_reports(s, months[0], months[-1])
    return compute(found, PERIOD, taxonomy, minimum=2, secret=b"k" * 32)


def means(stats: MonthlyStatistics, month: str) -> dict[str, Fraction]:
    index = stats.type2.months.index(month)
    found = {key: trend[index].mean for key, trend in stats.type2.trend.items()}
    return {key: mean for key, mean in found.items() if mean}


def test_in_ecsirt_rsit_counts_count_as_the_mapping_says(stored: Engine) -> None:
    stats = statistics(stored, TAXONOMY)
    assert (stats.taxonomy, stats.type2.current("total").teams) == (ECSIRT, 3)
    assert stats.taxonomy_label == "eCSIRT.net v2 (eCSIRT.net incident classification)"
    assert means(stats, PERIOD) == {
        "total": Fraction(25 + 16 + 18, 3),
        "malicious-code": Fraction(9 + 9, 3),
        "malicious-code/-": Fraction(9, 3),  # infected system and C2 server: no eCSIRT type
        "malicious-code/virus": Fraction(9, 3),
        "fraud": Fraction(4 + 2, 3),
        "fraud/masquerade": Fraction(4 + 2, 3),  # phishing is a masquerade
        "intrusion-attempts": Fraction(30, 3),
        "intrusion-attempts/login-attempts": Fraction(10 + 5 + 15, 3),
        "other": Fraction(2 + 3, 3),  # vulnerable is not an eCSIRT class
    }
    assert stats.type2.current("other").rounded() == Decimal("1.67")
    assert means(stats, "2026-09") == {"total": 3, "other": Fraction(4 + 2, 2)}


def test_in_rsit_every_month_is_recounted_from_what_was_sent(stored: Engine) -> None:
    stats = statistics(stored, TAXONOMY.with_canonical(RSIT))
    assert stats.taxonomy == RSIT
    assert "RSIT 1.3" in stats.taxonomy_label and "version 1003" in stats.taxonomy_label
    assert means(stats, PERIOD) == {
        "total": Fraction(59, 3),
        "malicious-code": Fraction(18, 3),
        "malicious-code/-": Fraction(9, 3),  # eCSIRT's virus: no RSIT type
        "malicious-code/infected-system": Fraction(6, 3),
        "malicious-code/c2-server": Fraction(3, 3),
        "fraud": Fraction(6, 3),
        "fraud/phishing": Fraction(4, 3),
        "fraud/masquerade": Fraction(2, 3),
        "vulnerable": Fraction(2, 3),
        "vulnerable/weak-crypto": Fraction(2, 3),
        "intrusion-attempts": Fraction(30, 3),
        "intrusion-attempts/brute-force": Fraction(30, 3),
        "other": Fraction(3, 3),
        "other/-": Fraction(3, 3),
    }
    assert means(stats, "2026-09") == {
        "total": 3,
        "test": 2,
        "test/test": 2,
        "other": 1,
        "other/-": 1,
    }
    labels = {line.key: line.label for line in stats.type2.lines}
    assert labels["fraud/phishing"] == "Phishing"
    assert labels["information-content-security"] == "Information Security"
    assert labels["other/other"] == "Uncategorised"
    assert len([line for line in stats.type2.lines if line.depth == 0]) == 1 + 11


def test_internal_rows_show_each_team_in_the_canonical_vocabulary(stored: Engine) -> None:
    stats = statistics(stored, TAXONOMY.with_canonical(RSIT))
    rows = {row.team: row.values for row in stats.type2.rows}
    assert rows["alpha"]["malicious-code/infected-system"] == 6
    assert rows["bravo"]["malicious-code/-"] == 9
    assert rows["charlie"]["intrusion-attempts/brute-force"] == 15
