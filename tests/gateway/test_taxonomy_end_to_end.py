"""RSIT 1.3 and eCSIRT.net v2 side by side, from the SMTP door to the monthly files.

One team reports in RSIT 1.3 as IntelMQ writes it (`classification.taxonomy/type` slugs,
a `Taxonomy: rsit-1.3` line), two in eCSIRT.net v2, all signed and encrypted over real
SMTP. The receipt shows what was sent and what it counts as; the monthly run in each
canonical setting gives the averages worked out by hand below, and its CSV names the
taxonomy with its version. The second run switches the canonical taxonomy after the
reports were stored: the month is recounted from what was sent.
"""

from __future__ import annotations

import csv
import email
import io
import smtplib
from collections.abc import Callable
from fractions import Fraction

import pytest
from smtp_support import HOST, Start
from statistics_data import pdf_text
from support import INTAKE, TeamClient, with_changes

from gateway.app import App
from gateway.jobs.monthly import run_monthly
from gateway.worker import Worker

PERIOD = "2026-10"
REPORTS = {
    # 10 + 7 + 6 + 2 = 25 incidents
    "alpha": (
        "Report: type2\nPeriod: 2026-10\nTaxonomy: rsit-1.3\n"
        "abusive-content/spam: 10\nfraud/phishing: 7\n"
        "malicious-code/infected-system: 6\nvulnerable/weak-crypto: 2\n"
    ),
    # 20 + 3 + 4 + 8 = 35
    "bravo": (
        "Report: type2\nPeriod: 2026-10\nAbusive Content / Spam: 20\nFraud / Masquerade: 3\n"
        "Malicious Code / Virus: 4\nIntrusion Attempts / Login attempts: 8\n"
    ),
    # 30 + 5 + 1 = 36
    "charlie": (
        "Report: type2\nPeriod: 2026-10\nAbusive Content / Spam: 30\n"
        "Malicious Code / Worm: 5\nOther: 1\n"
    ),
}
# Averages over the three teams, worked out by hand from the reports above.
IN_ECSIRT = {
    "total": Fraction(25 + 35 + 36, 3),  # 32
    "abusive-content": Fraction(10 + 20 + 30, 3),  # 20
    "abusive-content/spam": Fraction(10 + 20 + 30, 3),
    "fraud": Fraction(7 + 3, 3),  # RSIT phishing counts as masquerade
    "fraud/masquerade": Fraction(7 + 3, 3),
    "malicious-code": Fraction(6 + 4 + 5, 3),  # 5
    "malicious-code/-": Fraction(6, 3),  # infected-system has no eCSIRT type
    "malicious-code/virus": Fraction(4, 3),
    "malicious-code/worm": Fraction(5, 3),
    "intrusion-attempts": Fraction(8, 3),
    "intrusion-attempts/login-attempts": Fraction(8, 3),
    "other": Fraction(2 + 1, 3),  # RSIT vulnerable/weak-crypto counts as other
}
IN_RSIT = {
    "total": Fraction(25 + 35 + 36, 3),
    "abusive-content": Fraction(10 + 20 + 30, 3),
    "abusive-content/spam": Fraction(10 + 20 + 30, 3),
    "fraud": Fraction(7 + 3, 3),
    "fraud/phishing": Fraction(7, 3),
    "fraud/masquerade": Fraction(3, 3),
    "malicious-code": Fraction(6 + 4 + 5, 3),
    "malicious-code/infected-system": Fraction(6, 3),
    "malicious-code/-": Fraction(4 + 5, 3),  # virus and worm have no RSIT 1.3 type
    "intrusion-attempts": Fraction(8, 3),
    "intrusion-attempts/brute-force": Fraction(8, 3),  # = login attempts, exactly
    "vulnerable": Fraction(2, 3),
    "vulnerable/weak-crypto": Fraction(2, 3),
    "other": Fraction(1, 3),
    "other/-": Fraction(1, 3),  # RSIT's Other has types; eCSIRT's Other line gives none
}
TWO_PLACES = {  # the same, rounded half-up as the CSV shows them
    Fraction(32): "32.00",
    Fraction(20): "20.00",
    Fraction(10, 3): "3.33",
    Fraction(5): "5.00",
    Fraction(2): "2.00",
    Fraction(4, 3): "1.33",
    Fraction(5, 3): "1.67",
    Fraction(8, 3): "2.67",
    Fraction(1): "1.00",
    Fraction(7, 3): "2.33",
    Fraction(3): "3.00",
    Fraction(2, 3): "0.67",
    Fraction(1, 3): "0.33",
}


def receipt_text(team: TeamClient, raw: bytes) -> str:
    result = team.decrypt(raw)
    assert result.clean and [s.outcome for s in result.signatures] == ["good"]
    body = email.message_from_bytes(result.data).get_payload(decode=True)
    assert isinstance(body, bytes)
    return body.decode().replace("\r\n", "\n")


def shown(text: str, label: str) -> tuple[str, str]:
    """The receipt line starting with `label`, split at its colon, and the line after it."""
    lines = text.splitlines()
    [at] = [i for i, line in enumerate(lines) if line.strip().startswith(f"{label}:")]
    return lines[at].partition(f"{label}:")[2].strip(), lines[at + 1].strip()


@pytest.fixture
def teams(
    app: App, make_team: Callable[..., TeamClient], smtp_server: Start, worker: Worker
) -> dict[str, TeamClient]:
    """The three teams, their reports sent over SMTP, processed and receipts delivered."""
    clients = {handle: make_team(handle) for handle in REPORTS}
    port = smtp_server()
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        for handle, client in clients.items():
            smtp.sendmail(client.email, [INTAKE], client.submit(REPORTS[handle]))
    assert worker.run_once() == {"accepted": 3}
    assert worker.flush().sent == 3
    return clients


def test_the_receipt_shows_what_was_sent_and_what_it_counts_as(
    app: App, teams: dict[str, TeamClient]
) -> None:
    delivered = {
        email.message_from_bytes(raw)["To"]: raw
        for raw in (p.read_bytes() for p in (app.config.outbound.maildir / "new").iterdir())
    }
    alpha = receipt_text(teams["alpha"], delivered[teams["alpha"].email])
    assert shown(alpha, "Fraud / Phishing (RSIT 1.3)") == (
        "7",
        "counts as Fraud / Masquerade (eCSIRT.net v2)",
    )
    assert shown(alpha, "Malicious Code / Infected System (RSIT 1.3)") == (
        "6",
        "counts as Malicious Code, type not given (eCSIRT.net v2)",
    )
    assert shown(alpha, "Vulnerable / Weak Cryptography (RSIT 1.3)") == (
        "2",
        "counts as Other, type not given (eCSIRT.net v2)",
    )
    # Sent in the canonical vocabulary: shown as always, nothing to explain.
    bravo = receipt_text(teams["bravo"], delivered[teams["bravo"].email])
    assert shown(bravo, "Fraud / Masquerade")[0] == "3"
    assert "counts as" not in bravo and "RSIT" not in bravo


def test_the_monthly_run_counts_in_each_canonical_taxonomy_and_names_it(
    app: App, teams: dict[str, TeamClient]
) -> None:
    """The reports were stored while eCSIRT.net v2 was canonical; switching to RSIT 1.3
    and running the month again recounts it from what each team sent, and rewrites its
    files."""
    for canonical, expected in (("ecsirt-v2", IN_ECSIRT), ("rsit-1.3", IN_RSIT)):
        configured = App(with_changes(app.config, taxonomy={"canonical": canonical}))
        result = run_monthly(configured, PERIOD, send=False)
        named = configured.taxonomy.canonical_vocabulary.full_name
        configured.engine.dispose()

        of_type2 = result.statistics.type2
        assert of_type2.teams == 3
        figures = {key: of_type2.current(key).mean for key in of_type2.trend}
        assert {key: figures[key] for key in expected} == expected
        # Every figure not listed is zero: nothing counted twice, nothing lost.
        assert {key: mean for key, mean in figures.items() if key not in expected and mean} == {}

        written = (result.directory / "public.csv").read_bytes()
        assert written == result.files["public.csv"]
        rows = list(csv.DictReader(io.StringIO(written.decode("utf-8"))))
        month = {r["figure"]: r for r in rows if r["period"] == PERIOD and r["type"] == "type2"}
        assert {key: month[key]["average"] for key in expected} == {
            key: TWO_PLACES[mean] for key, mean in expected.items()
        }
        assert {r["taxonomy"] for r in rows if r["type"] == "type2"} == {canonical}
        public = " ".join(pdf_text((result.directory / "public.pdf").read_bytes()).split())
        assert f"Incident classes and types: {named}." in public
