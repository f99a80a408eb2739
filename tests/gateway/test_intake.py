"""The spool door shared by every channel: status-header stripping and `accept`.

`strip_status_headers` must drop every `X-Clearinghouse-*` field with its continuation
lines and leave every other byte of the message exactly as it came.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from contract.errors import StorageError
from gateway.app import App
from gateway.spool import accept, strip_status_headers
from store import spool
from store.db import open_session

BODY_CRLF = b"Report: type1\r\nX-Clearinghouse-Status: in the body stays\r\n"


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def lf(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


# --- strip_status_headers --------------------------------------------------------------


def test_crlf_message_loses_status_headers_and_keeps_everything_else() -> None:
    raw = (
        crlf(
            "From: cert@alpha.example",
            "X-Clearinghouse-Status: accepted",
            "Subject: statistics",
            "x-clearinghouse-team: alpha",
            "To: stats@clearinghouse.example",
            "",
        )
        + BODY_CRLF
    )
    expected = (
        crlf(
            "From: cert@alpha.example",
            "Subject: statistics",
            "To: stats@clearinghouse.example",
            "",
        )
        + BODY_CRLF
    )
    assert strip_status_headers(raw) == expected


def test_lf_message_loses_status_headers_and_keeps_lf() -> None:
    raw = lf(
        "X-Clearinghouse-Verdict: accepted",
        "From: cert@alpha.example",
        "Subject: statistics",
        "X-CLEARINGHOUSE-TEAM: alpha",
        "",
        "body",
        "X-Clearinghouse-Status: in the body stays",
    )
    assert strip_status_headers(raw) == lf(
        "From: cert@alpha.example",
        "Subject: statistics",
        "",
        "body",
        "X-Clearinghouse-Status: in the body stays",
    )


@pytest.mark.parametrize("make", [crlf, lf], ids=["crlf", "lf"])
def test_continuation_lines_go_with_their_field_and_stay_with_others(
    make: Callable[..., bytes],
) -> None:
    raw = make(
        "From: cert@alpha.example",
        "X-Clearinghouse-Status: accepted;",
        "\tteam=alpha;",
        "  signer=0123456789ABCDEF",
        "Subject: a folded",
        " subject line",
        "X-Clearinghouse-Team:",
        " alpha",
        "To: stats@clearinghouse.example",
        "",
        "body",
    )
    assert strip_status_headers(raw) == make(
        "From: cert@alpha.example",
        "Subject: a folded",
        " subject line",
        "To: stats@clearinghouse.example",
        "",
        "body",
    )


@pytest.mark.parametrize(
    "raw",
    [
        crlf("From: cert@alpha.example", "Subject: x", "", "body"),
        lf("From: cert@alpha.example", "Subject: x", "", "body"),
        crlf("From: cert@alpha.example", "X-Clearinghouses: not ours", "", "body"),
        crlf("From: cert@alpha.example", "X-Clearinghouse: no dash", "", "body"),
        crlf("From: cert@alpha.example", "", "X-Clearinghouse-Status: body only"),
        b"",
    ],
    ids=["crlf", "lf", "similar-name", "no-dash", "only-in-body", "empty"],
)
def test_a_message_without_status_headers_is_returned_unchanged(raw: bytes) -> None:
    assert strip_status_headers(raw) == raw


def test_a_header_only_message_is_stripped_too() -> None:
    raw = crlf("From: cert@alpha.example", "X-Clearinghouse-Status: accepted", "Subject: x")
    assert strip_status_headers(raw) == crlf("From: cert@alpha.example", "Subject: x")


def test_lf_header_is_stripped_even_when_the_body_holds_a_crlf_blank_line() -> None:
    # The header ends at the first blank line, whatever its line ending; a CRLF blank
    # line further down in the body must not hide a status field in an LF header.
    raw = lf("From: cert@alpha.example", "X-Clearinghouse-Status: accepted", "") + (
        b"body\r\n\r\nmore\r\n"
    )
    assert strip_status_headers(raw) == lf("From: cert@alpha.example", "") + (
        b"body\r\n\r\nmore\r\n"
    )


def test_a_bare_lf_inside_a_crlf_header_does_not_hide_a_status_field() -> None:
    # Python's email parser (which unwraps the message later) ends a header line at a
    # bare LF too, so a field after one is a field, and a status field is dropped.
    raw = b"From: cert@alpha.example\nX-Clearinghouse-Status: accepted\r\nSubject: x\r\n\r\nb"
    assert strip_status_headers(raw) == b"From: cert@alpha.example\nSubject: x\r\n\r\nb"


# --- accept ----------------------------------------------------------------------------


def test_accept_stores_the_stripped_message_with_its_envelope(app: App) -> None:
    raw = crlf("From: a@alpha.example", "X-Clearinghouse-Status: accepted", "", "body")
    message_id, new = accept(
        app.engine, raw, "ingest", envelope_from="a@alpha.example", envelope_to=["s@x.example"]
    )
    assert new
    with open_session(app.engine) as s:
        message = spool.get_message(s, message_id)
        assert message is not None
        assert message.raw == crlf("From: a@alpha.example", "", "body")
        assert (message.state, message.channel) == ("received", "ingest")
        assert message.envelope_from == "a@alpha.example"
        assert spool.envelope_recipients(message) == ["s@x.example"]


def test_accept_recognises_a_known_intake_key(app: App) -> None:
    first = accept(app.engine, b"Subject: x\r\n\r\nbody\r\n", "imap", intake_key="INBOX:1:abc")
    again = accept(app.engine, b"Subject: x\r\n\r\nbody\r\n", "imap", intake_key="INBOX:1:abc")
    assert first == (first[0], True)
    assert again == (first[0], False)
    with open_session(app.engine) as s:
        assert len(spool.list_messages(s)) == 1


def test_accept_turns_a_database_failure_into_a_storage_error(app: App) -> None:
    cascade = " CASCADE" if app.engine.dialect.name == "postgresql" else ""  # outbox refers
    with app.engine.begin() as connection:
        connection.execute(text(f"DROP TABLE message{cascade}"))
    with pytest.raises(StorageError) as caught:
        accept(app.engine, b"Subject: x\r\n\r\nbody\r\n", "ingest")
    assert caught.value.exit_code == 75
    assert "no such table" not in str(caught.value)
