"""Trusted Introducer directory files for the tests, in TI's format (`teams.json`).

Built per test from the teams and keys the test made, so that the fingerprints the
directory lists are those of real keys. The format is the one docs/reference.md names and TI
exports (official_name, short_name, country, classification {code, name, since}, emails
[{address, usage}], pgp_keys [{fingerprint (spaced hex), expires}]).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NAMES = {"l": "Listed", "a": "Accredited", "c": "Certified"}

# The field layout of the file IntelMQ's TI lookup expert is tested with (TI's public
# export), with values of our own: nested country, classification with its since-date,
# usage as a list, constituency, phones, misp and fields we do not read.
TI_LAYOUT = """[
  {
    "official_name": "Energy Sector CERT of Testland",
    "short_name": "ES-CERT",
    "country": {"code": "TL", "name": "Testland"},
    "established": "2015-03-01",
    "host_organisation": "Testland Grid Operators",
    "classification": {"code": "c", "name": "Certified", "since": "2021-09-30"},
    "postal_address": "Grid Street 1\\n1000 Testcity\\nTestland",
    "constituency": {
      "types": ["CIIP"], "asns": [64500, 64501], "domains": ["*.grid.example"],
      "ipranges": ["192.0.2.0/24"], "countries": [{"code": "TL", "name": "Testland"}]
    },
    "business_hours": "08:00 to 17:00 Monday to Friday",
    "business_hours_timezone": "Europe/Berlin",
    "pgp_keys": [
      {"fingerprint": "1111 2222 3333 4444 5555  6666 7777 8888 9999 AAAA", "expires": "2030-01-31"}
    ],
    "phones": [
      {"usage": ["voice"], "number": "+99 1 234 56", "timezone": "Europe/Berlin"},
      {"usage": ["voice", "emergency"], "number": "+99 1 234 57", "timezone": "Europe/Berlin"}
    ],
    "emails": [
      {"address": "noc@grid.example", "usage": ["automated incident reporting"]},
      {"address": "cert@grid.example", "usage": ["contact"]}
    ],
    "misp": {"org_uuid": "00000000-0000-4000-8000-000000000000", "org_name": "ES-CERT",
             "org_email": "cert@grid.example"}
  },
  {
    "official_name": "University Network CERT",
    "short_name": "UNI Net CERT",
    "country": {"code": "TL", "name": "Testland"},
    "established": "2001-01-01",
    "host_organisation": "Testland Universities",
    "classification": {"code": "a", "name": "Accredited", "since": "2002-06-28"},
    "postal_address": "Campus 7\\nTestcity",
    "constituency": {"types": ["Research & Education"], "asns": [], "domains": [],
                     "ipranges": [], "countries": []},
    "business_hours": "09:00 - 17:00",
    "business_hours_timezone": "Europe/Berlin",
    "pgp_keys": [
      {"fingerprint": "abcd abcd abcd abcd abcd abcd abcd abcd abcd abcd", "expires": "2029-03-14"},
      {"fingerprint": "BCDE BCDE BCDE BCDE BCDE BCDE BCDE BCDE BCDE BCDE", "expires": "2029-03-12"}
    ],
    "phones": [{"usage": ["fax"], "number": "+99 2", "timezone": "Europe/Berlin",
                "comments": "This is not a secure fax"}],
    "emails": [{"address": "cert@uni.example", "usage": ["contact"]}]
  },
  {
    "official_name": "Consultancy CSIRT",
    "short_name": "CONS CSIRT",
    "country": {"code": "TL", "name": "Testland"},
    "classification": {"code": "l", "name": "Listed", "since": "2023-04-16"},
    "pgp_keys": [],
    "emails": [{"address": "CSIRT@Consultancy.example", "usage": ["contact"]}]
  }
]
"""


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
