"""What GnuPG says of one key: its fingerprint, user IDs, capabilities, dates, subkeys.

In: one entry of python-gnupg's key listing (`keys/gpg.py` asks gpg for it). Out: a
frozen `KeyDetails` with its `SubkeyDetails`, user IDs decoded as UTF-8. Judging what a
key can do is `keys/keycheck.py`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keys.gpg_status import (
    timestamp,
)


@dataclass(frozen=True)
class SubkeyDetails:
    fingerprint: str
    capabilities: str
    created: datetime | None
    expires: datetime | None
    revoked: bool


@dataclass(frozen=True)
class KeyDetails:
    fingerprint: str  # primary
    user_ids: tuple[str, ...]
    capabilities: str
    created: datetime | None
    expires: datetime | None
    revoked: bool
    subkeys: tuple[SubkeyDetails, ...] = field(default=())

    def owns(self, fingerprint: str) -> bool:
        fpr = fingerprint.upper()
        return fpr == self.fingerprint or any(s.fingerprint == fpr for s in self.subkeys)

    def key_for(self, fingerprint: str) -> KeyDetails | SubkeyDetails | None:
        fpr = fingerprint.upper()
        if fpr == self.fingerprint:
            return self
        return next((s for s in self.subkeys if s.fingerprint == fpr), None)


def _utf8(latin1: str) -> str:
    return latin1.encode("latin-1", "replace").decode("utf-8", "replace")


def key_details(raw: dict[str, Any]) -> KeyDetails:
    subs = []
    for sub in (raw.get("subkey_info") or {}).values():
        subs.append(
            SubkeyDetails(
                fingerprint=str(sub.get("fingerprint", "")).upper(),
                capabilities=str(sub.get("cap", "")),
                created=timestamp(str(sub.get("date", ""))),
                expires=timestamp(str(sub.get("expires", ""))),
                revoked=sub.get("trust") == "r",
            )
        )
    return KeyDetails(
        fingerprint=str(raw["fingerprint"]).upper(),
        user_ids=tuple(_utf8(str(u)) for u in raw.get("uids") or []),
        capabilities=str(raw.get("cap", "")),
        created=timestamp(str(raw.get("date", ""))),
        expires=timestamp(str(raw.get("expires", ""))),
        revoked=raw.get("trust") == "r",
        subkeys=tuple(subs),
    )
