"""Terminal escapes: nothing stored reaches an admin's terminal as a control character.

The envelope sender is the attacker's to choose; aiosmtpd stores it as given, and so do
team names from a directory, key user IDs and the details of a refusal. Every text
output escapes control characters the way `--json` does (gateway/printable.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli
from smtp_support import RAW, Start, client
from sqlalchemy import update
from sqlmodel import col
from support import INTAKE, config_toml

from gateway.app import App
from gateway.printable import printable
from store.db import transaction
from store.models import Team

HOSTILE_SENDER = '"\x1b]0;PWNED\x07\x1b[31mRED"@x.example'
# What reaches a terminal must hold none of these: C0 (but the printer's own line
# breaks), DEL, C1 (CSI is U+009B), and the bidirectional overrides.
FORBIDDEN = {chr(c) for c in range(32) if chr(c) != "\n"} | {"\x7f", "\x9b", "\u202e"}


@pytest.fixture
def ch(app: App, tmp_path: Path) -> Cli:
    path = tmp_path / "clearinghouse.toml"
    path.write_text(config_toml(app.config))
    return Cli(path)


def _clean(output: str) -> None:
    leaked = sorted({hex(ord(c)) for c in output if c in FORBIDDEN})
    assert not leaked, f"control characters reached the terminal: {leaked}"


def test_hostile_envelope_sender_is_escaped_in_every_view(
    app: App, smtp_server: Start, ch: Cli
) -> None:
    port = smtp_server()
    smtp = client(port)
    try:
        code, _ = smtp.docmd(f"MAIL FROM:<{HOSTILE_SENDER}>")
        assert code == 250  # the door stores what it is given; showing it is the CLI's job
        assert smtp.docmd(f"RCPT TO:<{INTAKE}>")[0] == 250
        code, _ = smtp.data(RAW)
        assert code == 250
    finally:
        smtp.quit()

    shown = ch("messages", "show", "1").stdout
    _clean(shown)
    assert "\\u001b]0;PWNED\\u0007\\u001b[31mRED" in shown  # escaped, not dropped
    as_json = ch("messages", "show", "1", "--json").stdout
    _clean(as_json)
    assert json.loads(as_json)["envelope_from"] == HOSTILE_SENDER  # the data is intact
    _clean(ch("messages", "list").stdout)
    _clean(ch("messages", "show", "1", "--raw").stdout)


EVIL_NAME = "CERT \x1b[2J\x9b31m\u202eevil"


def test_names_and_user_ids_are_escaped_in_listings(app: App, ch: Cli) -> None:
    # The registry refuses such a name now; one stored before it did is still escaped.
    app.registry.add_team("evil", name="CERT evil", email="cert@evil.example")
    with transaction(app.engine) as s:
        s.exec(update(Team).where(col(Team.handle) == "evil").values(name=EVIL_NAME))
    for args in (("teams", "list"), ("teams", "show", "evil"), ("audit",)):
        out = ch(*args).stdout
        _clean(out)
        assert "\\u001b[2J" in out or args == ("audit",)
    _clean(ch("teams", "list", "--json").stdout)


def test_the_rule_is_the_json_rule() -> None:
    sample = "a\x1bb\nc\td\x7f\x9b\u202e\u2028é"
    assert printable(sample) == (
        json.dumps(sample, ensure_ascii=False)[1:-1]
        .replace("\x7f", "\\u007f")
        .replace("\x9b", "\\u009b")
        .replace("\u202e", "\\u202e")
        .replace("\u2028", "\\u2028")
    )
    assert printable("line\nbreak", keep="\n") == "line\nbreak"
