"""The trust registry: teams, their pinned keys, coordinators, and the rules binding them.

In: admin commands (from the CLI) and fingerprint look-ups (from the pipeline). Out:
rows in the store and keys in the gateway keyring, kept consistent. Rules enforced here:
a team's email is the only address replies to it may go to; statuses are from a fixed
set; a team with submissions is never removed. Which keys may be bound (usable both ways,
one team's only, no key packet twice, never a secret key) is `keys/bindings.py`'s and
`keys/keycheck.py`'s.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from contract.errors import GnuPGError, RegistryError
from keys import bindings
from keys.bindings import ImportedKey
from keys.directory_link import claim_link
from keys.gpg import GnuPG
from keys.identity import load_identity
from keys.key_details import KeyDetails
from keys.keycheck import Usability, assess, holders, read_keys
from keys.policy import Binding
from store import audit as audit_log
from store import registry as q
from store.db import transaction
from store.models import Coordinator, Team, TeamKey

STATUSES = ("listed", "accredited", "certified", "suspended")
HANDLE_MAX = 63
HANDLE = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{HANDLE_MAX - 1}}}")
NAME_MAX = 200  # a team's or coordinator's name: printed in PDFs, mail and listings
# ASCII only, no quoting, no comments: a registered address goes into outgoing headers.
ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def _now() -> datetime:
    return datetime.now(UTC)


def check_address(address: str) -> str:
    if not ADDRESS.match(address) or len(address) > 254:
        raise RegistryError(f"{address!r} is not a usable email address (user@domain.tld)")
    return address.lower()


class Registry:
    """Registry operations over one store and one gateway keyring."""

    def __init__(self, engine: Engine, gpg: GnuPG, actor: str | None = None) -> None:
        self.engine = engine
        self.gpg = gpg
        self.actor = actor or audit_log.local_actor()  # who the audit log names

    def audit(self, s: Session, action: str, subject: str, details: str = "") -> None:
        """One audit entry in the caller's transaction, naming this registry's actor."""
        audit_log.record(s, self.actor, action, subject, details)

    _audit = audit

    def note_gateway_key(self, action: str, fingerprint: str, details: str = "") -> None:
        """Record a change of the gateway key (`init`, `gateway-key import`) once done.

        The keyring is not in the database, so this entry follows the change rather
        than sharing its transaction.
        """
        with transaction(self.engine) as s:
            self._audit(s, action, fingerprint, details)

    # --- teams --------------------------------------------------------------------------

    def add_team(
        self,
        handle: str,
        *,
        name: str,
        email: str,
        status: str = "accredited",
        country: str | None = None,
        ti_name: str | None = None,
    ) -> Team:
        if not HANDLE.fullmatch(handle):
            raise RegistryError(
                f"team handle {handle!r} must be 1 to {HANDLE_MAX} characters: lower-case "
                "letters, digits, '.', '_' or '-', starting with a letter or a digit"
            )
        check_name(name)
        _check_status(status)
        if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
            raise RegistryError(f"country {country!r} must be a two-letter ISO 3166 code")
        with transaction(self.engine) as s:
            if q.get_team(s, handle) is not None:
                raise RegistryError(f"team {handle!r} exists; see `teams show {handle}`")
            team = q.add_team(
                s,
                handle=handle,
                name=name,
                email=check_address(email),
                status=status,
                country=country.upper() if country else None,
                ti_name=None if ti_name is None else claim_link(s, ti_name),
            )
            details = f"name={name!r} email={team.email} status={status}"
            details += f" country={team.country}" if team.country else ""
            details += f" ti={team.ti_name!r}" if team.ti_name else ""
            self._audit(s, "teams add", handle, details)
            return team

    def set_status(self, handle: str, status: str) -> Team:
        _check_status(status)
        with transaction(self.engine) as s:
            before = self.team(s, handle).status
            team = q.set_team_status(s, handle, status)
            if team is None:
                raise _no_team(handle)
            self._audit(s, "teams set-status", handle, f"{before} -> {status}")
            return team

    def remove_team(self, handle: str) -> list[str]:
        """Remove a team that never stored anything, with its keys (registry and keyring).

        A team with submissions has history the statistics rest on: it is suspended,
        never removed. Its refused messages stay, no longer naming a team. Returns the
        fingerprints removed.
        """
        with transaction(self.engine) as s:
            team = self.team(s, handle)
            stored = q.count_submissions(s, team.id or 0)
            if stored:
                raise RegistryError(
                    f"team {handle!r} has {stored} stored submission{'s' if stored > 1 else ''}"
                    f" and is not removed; `teams set-status {handle} suspended` stops its "
                    "submissions and keeps its history"
                )
            fprs = [k.fingerprint for k in q.keys_of_team(s, team.id or 0)]
            detached = q.remove_team(s, team)
            details = f"name={team.name!r} email={team.email} keys={','.join(fprs) or '-'}"
            self.audit(s, "teams remove", handle, f"{details} messages={detached}")
            for fpr in fprs:
                if self.gpg.details(fpr) is not None:
                    bindings.delete_from_keyring(self, fpr)
            return fprs

    def team(self, session: Session, handle: str) -> Team:
        team = q.get_team(session, handle)
        if team is None:
            raise _no_team(handle)
        return team

    # --- keys (the rules are in keys/bindings.py and keys/keycheck.py) ---------------------

    def import_keys(
        self, handle: str, data: bytes, *, action: str = "keys import"
    ) -> list[ImportedKey]:
        """Bind every public key in `data` to team `handle` (all or nothing); `action`
        names the command in the audit log (`teams sync` binds keys through here too)."""
        return bindings.import_keys(self, handle, data, action=action)

    def remove_key(self, fingerprint: str) -> bindings.RemovedKey:
        """Remove a key from the registry and the gateway keyring, audited."""
        return bindings.remove_key(self, fingerprint)

    def gateway_fingerprint(self) -> str | None:
        try:
            return load_identity(self.gpg).fingerprint
        except GnuPGError:  # before `init`: no gateway key yet
            return None

    def assess_key(self, fingerprint: str, now: datetime | None = None) -> Usability | None:
        """What the gateway can do with a key in its keyring now; None if it is missing."""
        details = self.gpg.details(fingerprint)
        return None if details is None else assess(details, now or _now())

    def revoke_key(self, fingerprint: str, reason: str | None) -> TeamKey:
        with transaction(self.engine) as s:
            key = q.revoke_key(s, fingerprint.upper(), reason, _now())
            if key is None:
                raise RegistryError(f"no key {fingerprint} in the registry; see `keys list`")
            self._audit(s, "keys revoke", key.fingerprint, reason or "")
            return key

    def binding(self, session: Session, primary_fingerprint: str) -> Binding | None:
        return self.binding_of(q.team_for_fingerprint(session, primary_fingerprint))

    @staticmethod
    def binding_of(found: q.BoundKey | None) -> Binding | None:
        """The policy's view of a key's binding as `team_for_fingerprint` reads it."""
        if found is None:
            return None
        return Binding(
            found.team_id,
            found.handle,
            found.status,
            found.email,
            found.fingerprint,
            found.revoked_at is not None,
        )

    def key_details(self, fingerprint: str) -> KeyDetails | None:
        return self.gpg.details(fingerprint)

    def encryption_key(self, session: Session, team: Team | q.TeamRow) -> str | None:
        """The team's newest key that can be encrypted to now; None if it has none (say
        so with `no_usable_key`)."""
        return self.encryption_key_among(team, q.key_dates_of_team(session, team.id or 0))

    def encryption_key_among(self, team: Team | q.TeamRow, keys: list[q.KeyDates]) -> str | None:
        """`encryption_key`, given the team's keys as read already (`lock_team` reads them)."""
        now = _now()
        usable = [k for k in keys if k.revoked_at is None and self._can_encrypt(k.fingerprint, now)]
        if not usable:
            return None
        epoch = datetime.min.replace(tzinfo=UTC)
        return max(usable, key=lambda k: k.created_at or epoch).fingerprint

    def _can_encrypt(self, fingerprint: str, now: datetime) -> bool:
        key = self.gpg.details(fingerprint)
        return key is not None and assess(key, now).can_encrypt

    # --- coordinators -------------------------------------------------------------------

    def add_coordinator(self, email: str, data: bytes, name: str | None = None) -> Coordinator:
        if name is not None:
            check_name(name)
        keys = read_keys(self.gpg, data)
        if len(keys) != 1:
            raise RegistryError(f"the key file holds {len(keys)} keys; give exactly one")
        fpr = keys[0].fingerprint
        address = check_address(email)
        with transaction(self.engine) as s:
            if q.get_coordinator(s, address) is not None:
                raise RegistryError(f"coordinator {address} exists; remove it first to re-key")
            if q.team_for_fingerprint(s, fpr) is not None:
                raise RegistryError(f"key {fpr} belongs to a team; coordinators need their own")
            held = holders(self.gpg.public_keys())
            bindings.check_not_taken(s, keys[0], held, self.gateway_fingerprint(), "a coordinator")
            self.gpg.import_keys(data)
            coordinator = q.add_coordinator(s, email=address, name=name, fingerprint=fpr)
            self._audit(s, "coordinators add", address, f"key {fpr} name={name!r}")
            return coordinator

    def remove_coordinator(self, email: str) -> None:
        with transaction(self.engine) as s:
            if not q.remove_coordinator(s, email.lower()):
                raise RegistryError(f"no coordinator {email}; see `coordinators list`")
            self._audit(s, "coordinators remove", email.lower())


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise RegistryError(f"status {status!r} is not one of {', '.join(STATUSES)}")


def _no_team(handle: str) -> RegistryError:
    return RegistryError(
        f"no team {handle!r}; add it with `teams add {handle} --name ... "
        "--email ...` or see `teams list`"
    )


def no_usable_key(handle: str) -> str:
    """What to tell the admin when team `handle` has no key to encrypt a mail to."""
    return (
        f"team {handle!r} has no usable key to encrypt to; "
        f"import a current key with `keys import {handle} FILE`"
    )


def check_name(name: str) -> str:
    """A team's or coordinator's display name: one line, not empty, at most NAME_MAX
    characters, no control characters (it is printed on terminals, in PDFs and mail)."""
    if not name.strip():
        raise RegistryError("the name must not be empty")
    if len(name) > NAME_MAX:
        raise RegistryError(f"the name is {len(name)} characters long; at most {NAME_MAX}")
    if any(_invisible(c) for c in name):
        raise RegistryError(
            f"the name {name!r} holds a line break or control character; give it on one line"
        )
    return name


def _invisible(char: str) -> bool:
    """Control, line-separating and format characters (bidi overrides among them), but
    the joiners some scripts need inside words (ZWNJ, ZWJ)."""
    category = unicodedata.category(char)
    return category in ("Cc", "Zl", "Zp") or (category == "Cf" and char not in "\u200c\u200d")
