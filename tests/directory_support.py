"""Trusted Introducer directory files for the tests, in TI's format (`teams.json`).

Built per test from the teams and keys the test made, so that the fingerprints the
directory lists are those of real keys. The format is the one SPEC.md names and TI
exports (official_name, short_name, country, classification {code, name, since}, emails
[{address, usage}], pgp_keys [{fingerprint (spaced hex), expires}]).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NAMES = {"l": "Listed", "a": "Accredited", "c": "Certified"}


def spaced(fingerprint: str) -> str:
    """A fingerprint as TI prints it: groups of four hex digits."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def ti_team(
    short_name: str,
    code: str,
    *,
    fingerprints: Sequence[str] = (),
    expires: str | None = "2031-06-30",
    since: str = "2019-05-14",
    email: str | None = None,
    country: str = "XX",
) -> dict[str, Any]:
    return {
        "official_name": f"{short_name} Computer Emergency Response Team",
        "short_name": short_name,
        "country": {"code": country, "name": "Testland"},
        "classification": {"code": code, "name": NAMES.get(code, code), "since": since},
        "emails": [
            {"address": email or f"cert@{short_name.lower()}.example", "usage": ["contact"]}
        ],
        "pgp_keys": [{"fingerprint": spaced(f), "expires": expires} for f in fingerprints],
    }


def write_directory(path: Path, teams: Sequence[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(list(teams), indent=2), encoding="utf-8")
    return path
