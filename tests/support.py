"""Helpers shared by the tests: sample reports and a team's client side."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Config
from keys.compose import compose, open_sealed
from keys.gpg import GnuPG
from keys.gpg_status import CryptoResult

INTAKE = "stats@clearinghouse.example"

TYPE1 = """\
Report: type1
Period: 2026-10
Requests: 1204
Incidents-Opened: 311
Incidents-Closed: 298
Inbound-Communication: 1650
Outbound-Communication: 1422
Organisations-Involved: 187
Hours-Spent: 940.5
"""

TYPE2 = """\
Report: type2
Period: 2026-10
Abusive Content / Spam: 120
Intrusion Attempts / Login attempts: 43
Intrusions: 3
Malicious Code / Virus: 12
Other: 1
"""


@dataclass
class TeamClient:
    """A registered team as the outside world sees it: its own keyring and address."""

    handle: str
    email: str
    gpg: GnuPG
    fingerprint: str
    gateway_fingerprint: str

    def submit(
        self,
        report: str = TYPE1,
        *,
        form: str = "combined",
        sender: str | None = None,
        to: str = INTAKE,
    ) -> bytes:
        return compose(
            self.gpg,
            report,
            signer=self.fingerprint,
            recipients=[self.gateway_fingerprint],
            sender=sender or self.email,
            to=to,
            form=form,
        )

    def decrypt(self, raw: bytes) -> CryptoResult:
        """Decrypt a mail from the gateway the way the team's mail client would."""
        return open_sealed(self.gpg, raw)

    def with_new_key(self, home: Path, name: str, email: str | None = None) -> TeamClient:
        """The same address with another key (registered nowhere), in a keyring at `home`
        that knows the gateway's key: a stranger, or the team's next key."""
        gpg = GnuPG(home)
        fingerprint = gpg.generate_key(name, email or self.email)
        gpg.import_keys(self.gpg.export_public(self.gateway_fingerprint).encode())
        return dataclasses.replace(self, gpg=gpg, fingerprint=fingerprint)


def with_changes(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys of some sections replaced."""
    changes = {
        name: dataclasses.replace(getattr(config, name), **values)
        for name, values in sections.items()
    }
    return dataclasses.replace(config, **changes)


def config_toml(config: Config, extra: str = "") -> str:
    """A TOML file's text pointing another process at `config`'s home and database.

    The database URL is the test's own (SQLite, or a PostgreSQL schema), so a CLI run
    or a subprocess sees the rows the test sees. `extra` continues [clearinghouse]
    and may open further sections.
    """
    core = config.clearinghouse
    return (
        f"[clearinghouse]\nhome = {json.dumps(str(core.home))}\n"
        f"database_url = {json.dumps(core.database_url)}\n{extra}"
    )


def gpg_processes(home: Path, *words: str) -> list[str]:
    """Command lines of running processes for GnuPG home `home` holding every word."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in argv)
        if str(home) in line and all(w in line for w in words):
            found.append(line)
    return found
