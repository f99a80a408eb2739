"""What gateway/intake/smtp.py relies on inside aiosmtpd, beyond its documented hooks.

`IntakeSMTP.smtp_DATA` replaces aiosmtpd's DATA phase (to gather a message in one buffer,
not a bytearray a line) and calls a few of its private helpers. pyproject.toml pins
aiosmtpd below the next minor version; before that bound is raised, this test says what
changed upstream: a private helper's code or signature, or the DATA phase it replaces.
Review gateway/intake/smtp.py against the new code, then record the new digests here.
"""

from __future__ import annotations

import hashlib
import inspect

import pytest
from aiosmtpd.smtp import SMTP

# Source digests (sha256, first 16 hex digits) in aiosmtpd 1.4.6.
RELIED_ON = {
    "smtp_DATA": "3a33f30d3fd6d02f",  # replaced: ours must still do what it did
    "_set_post_data_state": "1dc8a8abca2a8164",
    "_call_handler_hook": "6ff23a6634ea0307",
    "check_helo_needed": "9829bb73251c983e",
    "check_auth_needed": "812bbc794078b1b0",
    "push": "15f4f1de5e30c337",
    # The door's caps (gateway/intake/smtp_guard.py): a refused connection is answered
    # 421 where _handle_client would greet; the idle timer is aiosmtpd's, rescheduled by
    # our pace instead of reset at every command; connections are counted in and out.
    "_handle_client": "0e4d096403af6c74",
    "_reset_timeout": "fef19b94d28dff31",
    "_timeout_cb": "10a7351f9bec2818",
    "connection_made": "77a45df5065bba34",
    "connection_lost": "d3bf6349bc3c25c1",
    # handle_MAIL (the quota) must set the envelope's sender as smtp_MAIL does without it.
    "smtp_MAIL": "80dd938e7791acfb",
}


def digest(name: str) -> str:
    return hashlib.sha256(inspect.getsource(getattr(SMTP, name)).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(RELIED_ON))
def test_aiosmtpd_still_has_what_the_intake_relies_on(name: str) -> None:
    assert hasattr(SMTP, name), f"aiosmtpd's SMTP has no {name} any more"
    assert digest(name) == RELIED_ON[name], (
        f"aiosmtpd's SMTP.{name} changed: review gateway/intake/smtp.py, then record "
        f"{digest(name)} in this test"
    )


def test_the_stream_reader_and_writer_are_where_the_data_phase_reads_them() -> None:
    # IntakeSMTP._read_line reads self._reader and closes self._writer, which aiosmtpd
    # sets in connection_made.
    source = inspect.getsource(SMTP.connection_made)
    assert "self._reader" in source and "self._writer" in source


def test_the_idle_timer_is_the_one_aiosmtpd_cancels_and_greets_in_handle_client() -> None:
    # IntakeSMTP keeps its pace timer in self._timeout_handle, which connection_lost
    # cancels; and answers 421 instead of the greeting _handle_client pushes first.
    assert "self._timeout_handle.cancel()" in inspect.getsource(SMTP.connection_lost)
    assert "await self.push('220 " in inspect.getsource(SMTP._handle_client)
