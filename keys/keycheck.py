"""Which keys the gateway can bind: readable, usable both ways, and nobody else's.

In: a key file an admin gives (`keys import`, `coordinators add`) and the gateway
keyring. Out: the keys in the file as GnuPG reads them (`KeyDetails`, from a scratch
keyring, so nothing reaches the gateway keyring before it is checked), what each can do
now (`Usability`: verify its signatures, encrypt to it, and why not), and the first
reason the file must be refused, in words an admin can act on. The rules:

- A key the gateway's GnuPG cannot read (OpenPGP v5 or v6, RFC 9580) is named as such:
  gpg itself only says "no valid OpenPGP data".
- A team key must let the gateway both verify the team's signatures and encrypt replies
  to it: a sign-only key would be accepted and answered never.
- No key or subkey fingerprint may be in the keyring twice. GnuPG finds a key by any of
  its fingerprints, so a key that carries another key's packet as a subkey (no
  back-signature is needed for an authentication or encryption subkey, and a planted
  signing subkey without one still shadows the real key) would make the real key's
  import fail and its signatures unverifiable ("key planting").
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from contract.errors import RegistryError
from keys.gpg import GnuPG
from keys.key_details import KeyDetails, SubkeyDetails

_KEY_TAGS = {5: "secret key", 6: "public key", 7: "secret subkey", 14: "public subkey"}
_ARMOR = re.compile(
    rb"-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----\r?\n(.*?)-----END PGP", re.S
)


def key_packet_versions(data: bytes) -> set[int]:
    """The versions of the key packets in `data` (armored or binary), headers only.

    Unreadable input gives what could be read: this only names a version GnuPG
    cannot read; whether the file holds a usable key is GnuPG's to say.
    """
    blobs = [_dearmor(m.group(1)) for m in _ARMOR.finditer(data)] or [data]
    return {version for blob in blobs for tag, version in _packets(blob) if tag in _KEY_TAGS}


def _dearmor(block: bytes) -> bytes:
    lines = block.replace(b"\r", b"").split(b"\n")
    if b"" in lines:  # armor headers ("Comment: ...") end at the first blank line
        lines = lines[lines.index(b"") + 1 :]
    body = b"".join(line for line in lines if not line.startswith(b"="))  # not the CRC
    try:
        return base64.b64decode(body)
    except (binascii.Error, ValueError):
        return b""


def _packets(data: bytes) -> Iterator[tuple[int, int]]:
    """(tag, first body byte) of each packet; stops at anything it cannot follow."""
    i = 0
    while i + 2 < len(data) and data[i] & 0x80:
        ctb = data[i]
        if ctb & 0x40:  # new format
            tag, first = ctb & 0x3F, data[i + 1]
            if first < 192:
                head, length = 2, first
            elif first < 224:
                head, length = 3, ((first - 192) << 8) + data[i + 2] + 192
            elif first == 255:
                head, length = 6, int.from_bytes(data[i + 2 : i + 6], "big")
            else:
                return  # partial lengths: never used by key material
        else:
            size = {0: 1, 1: 2, 2: 4}.get(ctb & 3)
            if size is None:
                return
            tag, head = (ctb >> 2) & 0x0F, 1 + size
            length = int.from_bytes(data[i + 1 : i + head], "big")
        if i + head < len(data):
            yield tag, data[i + head]
        i += head + length


def unreadable_version(data: bytes) -> str | None:
    """What to tell the admin if the file holds a key this GnuPG cannot read."""
    newer = sorted(v for v in key_packet_versions(data) if v >= 5)
    if not newer:
        return None
    what = "v6 (RFC 9580)" if 6 in newer else f"v{newer[0]} (LibrePGP)"
    return (
        f"the file holds an OpenPGP {what} key, which the GnuPG this gateway runs cannot "
        "read; ask the team for an OpenPGP v4 key (GnuPG 2.2 or 2.4 makes one with "
        "`gpg --quick-gen-key 'NAME <ADDRESS>' future-default default 2y`; Sequoia with "
        "`sq key generate --profile rfc4880`); nothing was imported"
    )


def read_keys(gpg: GnuPG, data: bytes) -> list[KeyDetails]:
    """The public keys in `data` as GnuPG reads them, imported into a scratch keyring.

    Refuses secret keys, keys GnuPG cannot read, and files where GnuPG drops a key (two
    keys in the file sharing a key packet). The scratch keyring is inside the gateway's
    GnuPG home (the same file system, a private directory) and removed afterwards.
    """
    problem = unreadable_version(data)
    if problem is not None:
        raise RegistryError(problem)
    if gpg.contains_secret(data):
        raise RegistryError(
            "the file holds a SECRET key: export the public key only "
            "(gpg --export --armor FINGERPRINT) and import that"
        )
    primaries = sorted({str(k["fingerprint"]).upper() for k in gpg.scan(data)})
    if not primaries:
        raise RegistryError(
            "no OpenPGP public key found in the file (export it with "
            "`gpg --export --armor FINGERPRINT`)"
        )
    scratch = Path(tempfile.mkdtemp(prefix="k", dir=gpg.home))
    try:
        probe = GnuPG(scratch)
        probe.import_keys(data)
        found = {fpr: probe.details(fpr) for fpr in primaries}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    missing = [fpr for fpr, key in found.items() if key is None]
    if missing:
        raise RegistryError(
            f"GnuPG could not read key {missing[0]} in the file (is it a valid public "
            "key? does it share a key packet with another key in the file?); "
            "nothing was imported"
        )
    return [key for key in found.values() if key is not None]


# --- what a key can do ----------------------------------------------------------------


@dataclass(frozen=True)
class Usability:
    """What the gateway can do with a key now, and why not."""

    can_sign: bool
    can_encrypt: bool
    problems: tuple[str, ...]  # each missing capability, in words, with what to do
    until: datetime | None = None  # when it stops being usable (None: nothing expires)

    @property
    def usable(self) -> bool:
        return self.can_sign and self.can_encrypt

    @property
    def summary(self) -> str:
        return "usable" if self.usable else "NOT usable: " + "; ".join(self.problems)


def assess(key: KeyDetails, now: datetime) -> Usability:
    """Whether signatures by `key` verify now and replies can be encrypted to it."""
    if key.revoked:
        return Usability(False, False, ("the key is revoked: the team needs a new key",))
    if key.expires is not None and key.expires <= now:
        return Usability(
            False,
            False,
            (
                f"the key expired on {key.expires:%Y-%m-%d}: the team extends it "
                f"(gpg --quick-set-expire {key.fingerprint} 2y) and sends it again",
            ),
            key.expires,
        )
    sign = _capability(key, "s", now)
    encrypt = _capability(key, "e", now)
    problems = tuple(p for p in (sign, encrypt) if p)
    return Usability(sign is None, encrypt is None, problems, _until(key, now))


def _until(key: KeyDetails, now: datetime) -> datetime | None:
    """The first of: the primary's expiry, the last expiry of a part that signs, of one
    that encrypts (a part that never expires: no end)."""
    parts: list[KeyDetails | SubkeyDetails] = [key, *key.subkeys]
    ends = [key.expires]
    for letter in "se":
        able = [p for p in parts if letter in _own(p) and not p.revoked]
        if able and all(p.expires is not None for p in able):
            ends.append(max(p.expires or now for p in able))
    known = [end for end in ends if end is not None]
    return min(known) if known else None


_WHAT = {"s": "sign (its signatures cannot be verified)", "e": "be encrypted to"}


def _capability(key: KeyDetails, letter: str, now: datetime) -> str | None:
    """None if a part of `key` has capability `letter` now; else why not, in words."""
    parts: list[KeyDetails | SubkeyDetails] = [key, *key.subkeys]
    able = [p for p in parts if letter in _own(p)]
    if any(not p.revoked and (p.expires is None or p.expires > now) for p in able):
        return None
    fpr = key.fingerprint
    if not able:
        fix = (
            f"the team adds one (gpg --quick-add-key {fpr} cv25519 encr) and sends the key again"
            if letter == "e"
            else f"the team adds one (gpg --quick-add-key {fpr} ed25519 sign)"
        )
        kind = "encryption" if letter == "e" else "signing"
        sign_only = " (a sign-only key)" if letter == "e" else ""
        return f"it cannot {_WHAT[letter]}: it has no {kind} subkey{sign_only}; {fix}"
    last = max(able, key=lambda p: p.expires or now)
    role = "its encryption subkey" if letter == "e" else "its signing subkey"
    if last.revoked:
        return f"it cannot {_WHAT[letter]}: {role} {last.fingerprint} is revoked"
    return (
        f"it cannot {_WHAT[letter]}: {role} {last.fingerprint} expired on "
        f"{last.expires:%Y-%m-%d}; the team extends it (gpg --quick-set-expire {fpr} 2y "
        f"{last.fingerprint}) and sends the key again"
    )


def _own(part: KeyDetails | SubkeyDetails) -> str:
    """The part's own usage flags (GnuPG lists the whole key's in upper case)."""
    return "".join(c for c in part.capabilities if c.islower())


# --- one key packet, one key -----------------------------------------------------------


def fingerprints(key: KeyDetails) -> list[str]:
    return [key.fingerprint, *(s.fingerprint for s in key.subkeys)]


def holders(keyring: Iterable[KeyDetails]) -> dict[str, str]:
    """Every fingerprint in `keyring` (primary or subkey) -> the primary that holds it."""
    found: dict[str, str] = {}
    for key in keyring:
        for fpr in fingerprints(key):
            found.setdefault(fpr, key.fingerprint)
    return found


def shared_packet(key: KeyDetails, held: dict[str, str]) -> tuple[str, str] | None:
    """(fingerprint, the other primary holding it) if any part of `key` is held by
    another key in the keyring; None if every part is `key`'s own or new."""
    for fpr in fingerprints(key):
        other = held.get(fpr)
        if other is not None and other != key.fingerprint:
            return fpr, other
    return None
