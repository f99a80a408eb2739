"""Type 2 counts are stored as sent and as counted: read back, listed (as
`submissions list --json` shows them) and recounted in another canonical vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine

from parsers.model import Classification, Type2Report
from parsers.taxonomy import ECSIRT, RSIT, load_taxonomy
from parsers.text import parse_text
from store import submission_rows, submissions
from store.db import open_session, transaction
from store.type2 import StoredCount

TAXONOMY = load_taxonomy()
IN_RSIT = TAXONOMY.with_canonical(RSIT)
REPORT = """Report: type2
Period: 2026-10
Taxonomy: rsit-1.3
malicious-code/infected-system: 6
Malicious Code / C2 Server: 3
fraud/phishing: 4
"""


def parsed(text: str = REPORT) -> Type2Report:
    outcome = parse_text(text, "body", date(2026, 11, 2), TAXONOMY)
    (report,) = outcome.reports
    assert isinstance(report, Type2Report)
    return report


def rsit(class_slug: str, type_slug: str | None = None) -> Classification:
    return Classification(RSIT, class_slug, type_slug)


def ecsirt(class_slug: str, type_slug: str | None = None) -> Classification:
    return Classification(ECSIRT, class_slug, type_slug)


SENT_AND_COUNTED = (
    StoredCount(rsit("malicious-code", "infected-system"), ecsirt("malicious-code"), 6),
    StoredCount(rsit("malicious-code", "c2-server"), ecsirt("malicious-code"), 3),
    StoredCount(rsit("fraud", "phishing"), ecsirt("fraud", "masquerade"), 4),
)


def test_every_count_is_stored_as_sent_and_as_counted(
    engine: Engine, new_team_id: Callable[[str], int], new_message_id: Callable[..., int]
) -> None:
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    report = parsed()
    with transaction(engine) as s:
        stored = submissions.store_report(s, team_id, report, message_id)
    expected = {"malicious-code": 9, "fraud/masquerade": 4}  # as counted: summed
    assert submission_rows.stored_values(report) == expected
    with open_session(engine) as s:
        assert submission_rows.submission_values(s, stored) == expected
        assert submission_rows.submission_values(s, stored, IN_RSIT) == {
            "malicious-code/infected-system": 6,
            "malicious-code/c2-server": 3,
            "fraud/phishing": 4,
        }
        (row,) = submission_rows.list_submissions(s, team="cert-a")
    assert row.values == expected
    assert row.counts == SENT_AND_COUNTED


def test_listings_show_both_and_recount_in_the_canonical_vocabulary(
    engine: Engine, new_team_id: Callable[[str], int], new_message_id: Callable[..., int]
) -> None:
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    ecsirt_report = parsed("Report: type2\nPeriod: 2026-09\nMalicious Code / Virus: 2\n")
    with transaction(engine) as s:
        submissions.store_report(s, team_id, parsed(), message_id)
        submissions.store_report(s, team_id, ecsirt_report, message_id)
    with open_session(engine) as s:
        october, september = submission_rows.list_submissions(s, taxonomy=IN_RSIT)
    assert [c.counted for c in october.counts] == [
        rsit("malicious-code", "infected-system"),
        rsit("malicious-code", "c2-server"),
        rsit("fraud", "phishing"),
    ]
    assert september.values == {"malicious-code": 2}  # eCSIRT's virus: no RSIT type
    assert [c.as_json() for c in september.counts] == [
        {
            "sent": {"taxonomy": "ecsirt-v2", "class": "malicious-code", "type": "virus"},
            "counts_as": {"taxonomy": "rsit-1.3", "class": "malicious-code", "type": None},
            "count": 2,
        }
    ]


def test_a_report_built_from_counts_alone_is_stored_as_sent_in_its_taxonomy(
    engine: Engine,
    new_team_id: Callable[[str], int],
    new_message_id: Callable[..., int],
) -> None:
    team_id, message_id = new_team_id("cert-a"), new_message_id()
    report = Type2Report("2026-10", {("other", None): 1, ("fraud", "copyright"): 2})
    with transaction(engine) as s:
        submissions.store_report(s, team_id, report, message_id)
    with open_session(engine) as s:
        (row,) = submission_rows.list_submissions(s)
    assert row.counts == (
        StoredCount(ecsirt("other"), ecsirt("other"), 1),
        StoredCount(ecsirt("fraud", "copyright"), ecsirt("fraud", "copyright"), 2),
    )
