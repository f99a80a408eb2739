"""The one rule that accepts a signature (docs/security.md, "The rule that accepts a signature").

In: an `Unwrapped` message, the registry binding of its signer, the signer's key as the
gateway keyring knows it, the policy settings and the time. Out: an `Authenticated`
(which team, which key, when signed) or a `Refusal` with a stable reason code.

A signature is accepted only if ALL of these hold, checked in this order:
  1. exactly one signature, and GnuPG exited 0 with no reported problem, GOODSIG;
  2. VALIDSIG names the signing key, and its primary key is bound in the registry;
  3. neither the primary key nor the signing subkey is revoked (keyring or registry);
  4. neither was expired at the time of signing;
  5. the team's status is one the policy allows to submit;
  6. the signature time is inside the freshness window (not too old, not in the future);
  7. protected headers (RFC 9788) naming a To name one of our intake addresses;
  8. the outer (and any protected) From matches the team's registered address as
     `sender_binding` demands.
GnuPG trust and python-gnupg's `valid` play no part: the registry's pin does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contract.codes import Reason
from keys.key_details import KeyDetails
from keys.shapes import Refusal
from keys.unwrap import Unwrapped


@dataclass(frozen=True)
class Binding:
    """What the registry says about a primary fingerprint."""

    team_id: int
    handle: str
    status: str
    email: str
    fingerprint: str
    revoked: bool


@dataclass(frozen=True)
class Policy:
    allowed_statuses: tuple[str, ...] = ("accredited", "certified")
    max_signature_age: timedelta = timedelta(days=30)
    future_skew: timedelta = timedelta(minutes=15)
    sender_binding: str = "domain"  # off | domain | address
    intake_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Authenticated:
    binding: Binding
    signing_fingerprint: str
    signed_at: datetime


_OUTCOME_REASONS = {
    "bad": Reason.BAD_SIGNATURE,
    "revoked-key": Reason.KEY_REVOKED,
    "expired-sig": Reason.STALE_SIGNATURE,
}


@dataclass(frozen=True)
class _Verified:
    """A signature GnuPG verified cleanly: every field is known."""

    signing_fingerprint: str
    primary_fingerprint: str
    created: datetime


def _single_signature(u: Unwrapped) -> _Verified | Refusal:
    sigs = u.verification.signatures
    if not sigs:
        return Refusal(Reason.NOT_SIGNED, "no signature found")
    if len(sigs) > 1:
        return Refusal(Reason.MULTIPLE_SIGNATURES, f"{len(sigs)} signatures")
    sig = sigs[0]
    if sig.outcome == "error":
        reason = Reason.UNKNOWN_KEY if sig.error_code == 9 else Reason.BAD_SIGNATURE
        return Refusal(reason, f"ERRSIG rc={sig.error_code} keyid={sig.keyid}")
    if sig.outcome in _OUTCOME_REASONS:
        return Refusal(_OUTCOME_REASONS[sig.outcome], f"{sig.outcome} keyid={sig.keyid}")
    # "expired-key" (expired today) is judged below against the signing time instead.
    if not sig.signing_fingerprint or not sig.primary_fingerprint or not sig.created:
        return Refusal(Reason.BAD_SIGNATURE, "no VALIDSIG for the signature")
    problems = u.verification.problems
    if problems or u.verification.returncode != 0:
        return Refusal(Reason.BAD_SIGNATURE, f"gpg exit {u.verification.returncode} {problems}")
    return _Verified(sig.signing_fingerprint, sig.primary_fingerprint, sig.created)


def _key_state(sig: _Verified, key: KeyDetails | None, binding: Binding) -> Refusal | None:
    signing = key.key_for(sig.signing_fingerprint) if key is not None else None
    if key is None or signing is None:
        return Refusal(Reason.UNKNOWN_KEY, "signing key not in the gateway keyring")
    if binding.revoked or key.revoked or signing.revoked:
        return Refusal(Reason.KEY_REVOKED, f"key {sig.signing_fingerprint} is revoked")
    for expires in (key.expires, signing.expires):
        if expires is not None and expires <= sig.created:
            return Refusal(Reason.KEY_EXPIRED, f"key expired {expires:%Y-%m-%d} before signing")
    return None


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _sender_ok(mode: str, registered: str, senders: Sequence[str]) -> bool:
    if mode == "off":
        return True
    if len(senders) != 1:
        return False
    if mode == "address":
        return senders[0].lower() == registered.lower()
    return _domain(senders[0]) == _domain(registered)


def authenticate(
    u: Unwrapped,
    binding: Binding | None,
    key: KeyDetails | None,
    policy: Policy,
    now: datetime,
) -> Authenticated | Refusal:
    """Apply the rule above. `binding` is the registry entry for the signer's primary key."""
    sig = _single_signature(u)
    if isinstance(sig, Refusal):
        return sig
    if binding is None:
        return Refusal(Reason.UNKNOWN_KEY, f"{sig.primary_fingerprint} is not bound to a team")
    refusal = _key_state(sig, key, binding)
    if refusal:
        return refusal
    if binding.status not in policy.allowed_statuses:
        return Refusal(Reason.TEAM_NOT_ALLOWED, f"team {binding.handle} is {binding.status}")
    if sig.created < now - policy.max_signature_age or sig.created > now + policy.future_skew:
        return Refusal(Reason.STALE_SIGNATURE, f"signed at {sig.created:%Y-%m-%d %H:%M} UTC")
    intake = {a.lower() for a in policy.intake_addresses}
    if u.protected_to is not None and not intake & set(u.protected_to):
        return Refusal(Reason.WRONG_RECIPIENT, "protected To names another recipient")
    for senders in (u.outer_from, u.protected_from or None):
        if senders is not None and not _sender_ok(policy.sender_binding, binding.email, senders):
            return Refusal(Reason.SENDER_MISMATCH, f"From {list(senders)[:2]} vs {binding.email}")
    return Authenticated(binding, sig.signing_fingerprint, sig.created)
