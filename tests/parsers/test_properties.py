"""Hostile input: the parsers never raise and finish quickly, whatever they are given."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.extract import parse_signed_content
from parsers.jsonfile import parse_json
from parsers.model import ParseOutcome
from parsers.table import parse_csv
from parsers.taxonomy import load_taxonomy
from parsers.text import parse_text

TAXONOMY = load_taxonomy()
TODAY = date(2026, 11, 15)
FAST = 2.0  # seconds; the real figure is milliseconds

# Never write an example database into the work tree; keep the run short.
PROPERTY = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FRAGMENTS = [
    "Report: type1", "Report: type2", "Report:", "report : TYPE 1", "Period: 2026-10",
    "Period: 2027-01", "Period: 2026-13", "Team: CERT", "Requests: 1", "Hours-Spent: 1.5",
    "7) Time spent: 3", "3) Incidents opened: 2", "Malicious Code / Virus: 3", "Other: -1",
    "Fraud / Phishing: 1e9", "Vulnerable: 2", "# note", "", "-- ", "x:", ":", "\t", "\r",
    "Abusive Content / Child/Sexual/Violence/...: 1", "Requests: 99999999999999999999",
    "-----BEGIN PGP MESSAGE-----", "report,period,key,value", "type2,2026-10,Other,1",
    '{"report": "type2", "period": "2026-10", "counts": {"Other": 1}}', "[", "]", "{",
    '"', ";", ",", "\x00", "\u202e", "\ud800", "Ö",
]  # fmt: skip

report_like = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=60
).map("\n".join)
any_text = st.one_of(st.text(max_size=2000), report_like)


def timed(run: object) -> ParseOutcome:
    assert callable(run)
    start = time.perf_counter()
    outcome = run()
    assert time.perf_counter() - start < FAST
    assert isinstance(outcome, ParseOutcome)
    assert not (outcome.reports and outcome.errors)
    for error in outcome.errors:
        assert error.line is None or error.line >= 1
        assert str(error)
    return outcome


@PROPERTY
@given(any_text)
def test_parse_text_never_raises(text: str) -> None:
    timed(lambda: parse_text(text, "body", TODAY, TAXONOMY))


@PROPERTY
@given(any_text)
def test_parse_csv_and_json_never_raise(text: str) -> None:
    timed(lambda: parse_csv(text.replace("\n", ",", 3), "a.csv", TODAY, TAXONOMY))
    timed(lambda: parse_json(text, "a.json", TODAY, TAXONOMY))


HEADERS = [
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: text/plain; charset=",
    b"Content-Type: text/csv", b"Content-Type: application/json",
    b"Content-Type: application/octet-stream", b"Content-Type: message/rfc822",
    b"Content-Type: application/pgp-signature", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: x-uue",
    b"Content-Disposition: attachment; filename=r.csv",
    b"Content-Disposition: attachment; filename*=utf-8''%FF.json", b"--b", b"--b--", b"",
    b"Report: type2", b"Period: 2026-10", b"Other: 1", b"=ZZ", b"UmVwb3J0", b"\xff\xfe",
]  # fmt: skip

mime_like = st.lists(st.one_of(st.sampled_from(HEADERS), st.binary(max_size=40)), max_size=40).map(
    b"\n".join
)
any_bytes = st.one_of(st.binary(max_size=3000), mime_like)


@PROPERTY
@given(any_bytes, st.sampled_from([email.policy.compat32, email.policy.default]))
def test_parse_signed_content_never_raises(raw: bytes, policy: email.policy.Policy) -> None:
    entity = email.message_from_bytes(raw, policy=policy)
    timed(lambda: parse_signed_content(entity, TODAY, TAXONOMY))


@PROPERTY
@given(st.text(max_size=500), st.text(max_size=40))
def test_entities_built_in_code_never_raise(body: str, charset: str) -> None:
    entity = email.message.Message()
    entity.set_payload(body)
    entity.set_param("charset", charset)
    timed(lambda: parse_signed_content(entity, TODAY, TAXONOMY))
