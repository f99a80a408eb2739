"""Property-based fuzzing of everything that parses untrusted bytes before authentication.

Any input, however broken, ends in a final message state with a reason code: never an
unhandled exception, never a message left `received`, never a stalled worker. The
report parsers have their own properties in tests/parsers/test_properties.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_support import process_all
from support import TYPE1, TeamClient

from gateway.app import App
from keys.shapes import Refusal
from keys.unwrap import Unwrapped

FINAL = {"accepted", "rejected", "duplicate", "quarantined"}
FUZZ = settings(
    max_examples=150,
    deadline=None,  # gpg start-up varies with machine load; the bound is on the whole run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

HEADER_NAMES = [
    "Content-Type",
    "Content-Transfer-Encoding",
    "From",
    "To",
    "MIME-Version",
    "Content-Disposition",
    "X-Clearinghouse-Status",
    "Autocrypt",
]
CONTENT_TYPES = [
    'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{b}"',
    'multipart/signed; protocol="application/pgp-signature"; boundary="{b}"',
    'multipart/mixed; boundary="{b}"',
    "multipart/alternative; boundary={b}",
    "multipart/mixed",
    "application/pgp-encrypted",
    "application/octet-stream",
    "application/pgp-signature",
    "message/rfc822",
    'text/plain; charset="{b}"',
    "text/plain",
]
ARMOR = [
    b"-----BEGIN PGP MESSAGE-----\r\n\r\nhQ==\r\n-----END PGP MESSAGE-----\r\n",
    b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nx\r\n",
    b"-----BEGIN PGP SIGNATURE-----\r\n\r\niQ==\r\n-----END PGP SIGNATURE-----\r\n",
    b"Version: 1\r\n",
    b"Report: type1\r\nPeriod: 2026-10\r\n",
]


def _entity(boundary: str) -> st.SearchStrategy[bytes]:
    header = st.tuples(
        st.sampled_from(HEADER_NAMES),
        st.sampled_from(CONTENT_TYPES).map(lambda c: c.format(b=boundary)),
    )
    body = st.lists(
        st.one_of(
            st.sampled_from(ARMOR),
            st.binary(max_size=60),
            st.just(f"--{boundary}\r\n".encode()),
            st.just(f"--{boundary}--\r\n".encode()),
        ),
        max_size=8,
    )
    return st.builds(
        lambda hs, bs: b"".join(f"{k}: {v}\r\n".encode() for k, v in hs) + b"\r\n" + b"".join(bs),
        st.lists(header, max_size=4),
        body,
    )


def mime_messages() -> st.SearchStrategy[bytes]:
    """Plausible-looking MIME built from the pieces the unwrap cares about, nested."""
    boundary = st.text(alphabet="abcXYZ019-_=", min_size=1, max_size=8)
    return boundary.flatmap(
        lambda b: st.recursive(
            _entity(b),
            lambda inner: st.builds(
                lambda parts, bb: (
                    f'Content-Type: multipart/mixed; boundary="{bb}"\r\n\r\n'.encode()
                    + b"".join(f"--{bb}\r\n".encode() + p + b"\r\n" for p in parts)
                    + f"--{bb}--\r\n".encode()
                ),
                st.lists(inner, min_size=1, max_size=3),
                boundary,
            ),
            max_leaves=6,
        )
    )


def _mutate(raw: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, cut, insert in edits:
        at = position % (len(raw) + 1)
        raw = raw[:at] + insert + raw[at + cut :]
    return raw


@pytest.fixture
def submission(team: TeamClient) -> bytes:
    return team.submit(TYPE1)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_unwrap_of_arbitrary_bytes_is_total(app: App, data: bytes) -> None:
    result = app.unwrapper.unwrap(data)
    assert isinstance(result, (Refusal, Unwrapped))
    if isinstance(result, Refusal):
        assert result.reason


@FUZZ
@given(raw=mime_messages())
def test_unwrap_of_generated_mime_is_total(app: App, raw: bytes) -> None:
    result = app.unwrapper.unwrap(raw)
    assert isinstance(result, Refusal), "nothing generated here is signed by a registered key"
    assert result.reason


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 64), st.binary(max_size=16)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_submissions_always_reach_a_final_state(
    app: App, submission: bytes, edits: list[tuple[int, int, bytes]]
) -> None:
    for state, reason in process_all(app, [_mutate(submission, edits)]):
        assert state in FINAL
        assert reason is not None or state in {"accepted", "duplicate"}


@settings(FUZZ, max_examples=40)
@given(raws=st.lists(mime_messages(), min_size=1, max_size=5))
def test_the_worker_drains_a_queue_of_garbage(app: App, raws: list[bytes]) -> None:
    states = process_all(app, raws)
    assert len(states) == len(raws)
    assert all(state == "quarantined" and reason for state, reason in states)
