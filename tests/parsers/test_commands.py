"""parsers/commands.py: a team command is the first meaningful line of the first text part."""

from __future__ import annotations

import email
import email.policy
import quopri
from email.message import Message

import pytest

from parsers.commands import Command, CommandError, find_command
from parsers.drafts import MAX_INPUT_BYTES

COMMENTS = "".join(f"# comment line {n:08d} of a long report preamble\n" for n in range(30_000))


def text_part(body: str, encoding: str = "7bit", charset: str = "utf-8") -> Message:
    """A text/plain entity as the MIME parser leaves it: the body stored as sent."""
    if encoding == "quoted-printable":
        body = quopri.encodestring(body.encode(charset)).decode("ascii")
    head = (
        f'Content-Type: text/plain; charset="{charset}"\nContent-Transfer-Encoding: {encoding}\n\n'
    )
    return email.message_from_string(head + body, policy=email.policy.compat32)


@pytest.mark.parametrize("encoding", ["7bit", "8bit", "quoted-printable", "base64"])
def test_the_command_is_read_whatever_the_encoding(encoding: str) -> None:
    if encoding == "base64":
        entity = email.message_from_string(
            'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: base64\n\n'
            "IyBhIGNvbW1lbnQKCkNvbW1hbmQ6IHN0YXR1cyAyMDI2LTEwCg==\n"  # "# a comment\n\n..."
        )
    else:
        entity = text_part("# a comment\n\nCommand: status 2026-10\n", encoding)
    assert find_command(entity) == Command("status", "2026-10")


def test_a_command_after_a_megabyte_of_comments_is_still_found_in_an_ascii_body() -> None:
    body = COMMENTS + "Command: template type2\n"
    assert len(body) > MAX_INPUT_BYTES
    assert find_command(text_part(body)) == Command("template", "type2")


def test_quoted_printable_is_decoded_only_as_far_as_a_report_may_go() -> None:
    # Past the size a report may have it is not read: not a command; the report parser
    # then refuses it as too large.
    assert (
        find_command(text_part(COMMENTS + "Command: status 2026-10\n", "quoted-printable")) is None
    )


def test_an_ascii_lookalike_in_another_charset_is_decoded_first() -> None:
    # UTF-16 text is ASCII byte by byte (its NULs are ASCII): it is not its own text.
    body = "Command: status 2026-10\n".encode("utf-16-le").decode("latin-1")
    entity = text_part(body, "8bit", "utf-16-le")
    assert find_command(entity) == Command("status", "2026-10")


def test_reports_are_not_commands_and_unknown_commands_are_errors() -> None:
    assert find_command(text_part("Report: type1\nPeriod: 2026-10\n")) is None
    found = find_command(text_part("Command: launch rockets\n"))
    assert isinstance(found, CommandError) and "unknown command" in found.message


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("Command: template type2 rsit-1.3", Command("template", "type2", "rsit-1.3")),
        ("command: TEMPLATE Type2 RSIT-1.3", Command("template", "type2", "rsit-1.3")),
        ("Command: template type2 ecsirt-v2", Command("template", "type2", "ecsirt-v2")),
        ("Command: template type2", Command("template", "type2", None)),
    ],
)
def test_a_type2_template_may_name_its_taxonomy(line: str, command: Command) -> None:
    assert find_command(text_part(line + "\n")) == command


@pytest.mark.parametrize(
    "line",
    ["Command: template type2 rsit-1.2", "Command: template type1 rsit-1.3",
     "Command: status 2026-10 rsit-1.3"],
)  # fmt: skip
def test_a_taxonomy_elsewhere_or_unknown_is_an_error(line: str) -> None:
    found = find_command(text_part(line + "\n"))
    assert isinstance(found, CommandError)
    assert found.message.startswith("unknown command")
    assert "template type2 [ecsirt-v2 | rsit-1.3]" in found.message
