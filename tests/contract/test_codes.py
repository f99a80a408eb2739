"""The contract's words are tied to the documentation and to the code that produces them.

Every state, reason code and kind of mail is a member of its StrEnum (contract/codes.py);
each must be documented in docs/reference.md, each reason explained in
contract/reasons.py, and each produced somewhere in the code: none documented but
unreachable, none reachable but undocumented.
"""

from __future__ import annotations

import ast
import re
from enum import StrEnum
from pathlib import Path

import pytest

from contract.codes import MailKind, Reason, State
from contract.reasons import REASONS, explain
from reports.mail import LETTERS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"
PRODUCERS = ("parsers", "store", "keys", "reports", "gateway")


def documented(first_column: str) -> set[str]:
    """The codes in the first column of the reference table whose header cell is that."""
    rows: set[str] = set()
    inside = False
    for line in REFERENCE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_column:
            inside = True
        elif not line.startswith("|"):
            inside = False
        elif inside and (code := re.fullmatch(r"`([a-z-]+)`", cells[0])):
            rows.add(code[1])
    return rows


def used_members(enum: type[StrEnum]) -> set[str]:
    """Members of `enum` named as `Enum.MEMBER` in the code outside contract/."""
    found: set[str] = set()
    for package in PRODUCERS:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == enum.__name__
                ):
                    found.add(node.attr)
    return found


@pytest.mark.parametrize(
    ("enum", "column"), [(State, "state"), (Reason, "reason"), (MailKind, "kind")]
)
def test_every_code_is_documented_and_nothing_else(enum: type[StrEnum], column: str) -> None:
    assert documented(column) == {member.value for member in enum}


@pytest.mark.parametrize("enum", [State, Reason, MailKind])
def test_every_code_is_produced_somewhere(enum: type[StrEnum]) -> None:
    unreachable = {member.name for member in enum} - used_members(enum)
    if enum is MailKind:  # kinds are named in the table of letters, not one by one
        unreachable -= {letter.kind.name for letter in LETTERS}
    assert unreachable == set()


def test_every_reason_is_explained() -> None:
    assert set(REASONS) == set(Reason)
    assert all(what and todo for what, todo in REASONS.values())
    assert explain("no-such-code") == ("Unknown reason code.", "See the logs.")
    assert explain(None) == ("", "")


def test_every_letter_has_its_template_and_every_template_a_letter() -> None:
    templates = {path.name for path in (ROOT / "reports" / "templates").glob("*.txt.j2")}
    named = [f"{letter.template}.txt.j2" for letter in LETTERS]
    assert sorted(named) == sorted(templates)
    assert {letter.kind for letter in LETTERS} == set(MailKind)
