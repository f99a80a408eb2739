"""keys/policy.py: `authenticate` as a table over synthetic facts (no gpg needed).

One accepted baseline; each case changes one fact and names the reason it must produce.
The last tests pile every fault onto one message and remove them one at a time, which
pins the order of the checks. Datetimes are timezone-aware UTC throughout.
"""

from __future__ import annotations

import dataclasses
import email.message
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keys.gpg_status import CryptoResult, SignatureFact
from keys.key_details import KeyDetails, SubkeyDetails
from keys.policy import Authenticated, Binding, Policy, authenticate
from keys.shapes import Refusal
from keys.unwrap import Unwrapped

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
SIGNED = NOW - timedelta(hours=1)
PRIMARY = "A" * 40
SIGNING = "B" * 40  # the signing subkey
ENCRYPTING = "C" * 40
INTAKE = "stats@clearinghouse.example"
TEAM = "cert@alpha.example"
POLICY = Policy(intake_addresses=(INTAKE, "reports@clearinghouse.example"))


def sig(**changes: Any) -> SignatureFact:
    base = SignatureFact("good", SIGNING[-16:], SIGNING, PRIMARY, SIGNED, None)
    return dataclasses.replace(base, **changes)


def subkey(fpr: str, cap: str, **changes: Any) -> SubkeyDetails:
    return dataclasses.replace(
        SubkeyDetails(fpr, cap, NOW - timedelta(days=400), None, False), **changes
    )


def key(**changes: Any) -> KeyDetails:
    base = KeyDetails(
        PRIMARY,
        (f"CERT Alpha <{TEAM}>",),
        "scSC",
        NOW - timedelta(days=400),
        None,
        False,
        (subkey(SIGNING, "s"), subkey(ENCRYPTING, "e")),
    )
    return dataclasses.replace(base, **changes)


def binding(**changes: Any) -> Binding:
    return dataclasses.replace(Binding(1, "alpha", "accredited", TEAM, PRIMARY, False), **changes)


def message(
    *sigs: SignatureFact,
    returncode: int = 0,
    problems: tuple[str, ...] = (),
    outer_from: tuple[str, ...] = (TEAM,),
    protected_from: tuple[str, ...] = (),
    protected_to: tuple[str, ...] | None = None,
) -> Unwrapped:
    result = CryptoResult(
        returncode=returncode,
        data=b"x",
        decrypted=True,
        encrypted=True,
        signatures=sigs,
        plaintext_packets=1,
        problems=problems,
    )
    return Unwrapped(
        email.message.Message(), b"x", result, True, outer_from, protected_from, protected_to
    )


@dataclasses.dataclass
class Case:
    """One `authenticate` call: the baseline with some of its inputs replaced."""

    u: Unwrapped = dataclasses.field(default_factory=lambda: message(sig()))
    binding: Binding | None = dataclasses.field(default_factory=binding)
    key: KeyDetails | None = dataclasses.field(default_factory=key)
    policy: Policy = POLICY
    now: datetime = NOW

    def run(self) -> Authenticated | Refusal:
        return authenticate(self.u, self.binding, self.key, self.policy, self.now)


def verdict(case: Case) -> str:
    result = case.run()
    return result.reason if isinstance(result, Refusal) else "accepted"


def with_sig(**changes: Any) -> Case:
    return Case(u=message(sig(**changes)))


def with_sigs(*sigs: SignatureFact, **gpg: Any) -> Case:
    return Case(u=message(*sigs, **gpg))


def with_key(**changes: Any) -> Case:
    return Case(key=key(**changes))


def with_subkey(**changes: Any) -> Case:
    return Case(key=key(subkeys=(subkey(SIGNING, "s", **changes), subkey(ENCRYPTING, "e"))))


def with_binding(**changes: Any) -> Case:
    return Case(binding=binding(**changes))


def with_policy(**changes: Any) -> Case:
    return Case(policy=dataclasses.replace(POLICY, **changes))


def to(*addresses: str) -> Case:
    return Case(u=message(sig(), protected_to=addresses))


def senders(mode: str, outer: tuple[str, ...], protected: tuple[str, ...] = ()) -> Case:
    return Case(
        u=message(sig(), outer_from=outer, protected_from=protected),
        policy=dataclasses.replace(POLICY, sender_binding=mode),
    )


NO_VALIDSIG = {"signing_fingerprint": None, "primary_fingerprint": None}
MAX_AGE = POLICY.max_signature_age
SKEW = POLICY.future_skew
SECOND = timedelta(seconds=1)
OTHER = "x@other.example"

# fmt: off
CASES: list[tuple[str, Callable[[], Case], str]] = [
    ("baseline", Case, "accepted"),
    ("primary key signed", lambda: with_sig(signing_fingerprint=PRIMARY), "accepted"),
    # 1. exactly one signature, gpg clean, GOODSIG
    ("no signature", lambda: with_sigs(), "not-signed"),
    ("two good signatures", lambda: with_sigs(sig(), sig()), "multiple-signatures"),
    ("good and bad", lambda: with_sigs(sig(), sig(outcome="bad")), "multiple-signatures"),
    ("BADSIG", lambda: with_sig(outcome="bad", created=None, **NO_VALIDSIG), "bad-signature"),
    ("BADSIG with VALIDSIG", lambda: with_sig(outcome="bad"), "bad-signature"),
    ("ERRSIG rc 4", lambda: with_sig(outcome="error", error_code=4), "bad-signature"),
    ("ERRSIG without rc", lambda: with_sig(outcome="error", error_code=None), "bad-signature"),
    ("GOODSIG but exit 1", lambda: with_sigs(sig(), returncode=1), "bad-signature"),
    ("GOODSIG but exit 2", lambda: with_sigs(sig(), returncode=2), "bad-signature"),
    ("problems reported", lambda: with_sigs(sig(), problems=("BADMDC",)), "bad-signature"),
    ("EXPKEYSIG with problems",
     lambda: with_sigs(sig(outcome="expired-key"), problems=("ERROR x 1",)), "bad-signature"),
    ("no VALIDSIG", lambda: with_sig(**NO_VALIDSIG), "bad-signature"),
    ("no primary in VALIDSIG", lambda: with_sig(primary_fingerprint=None), "bad-signature"),
    ("VALIDSIG without time", lambda: with_sig(created=None), "bad-signature"),
    # 2. signing key known and bound
    ("ERRSIG rc 9", lambda: with_sig(outcome="error", error_code=9, **NO_VALIDSIG),
     "unknown-key"),
    ("not bound", lambda: Case(binding=None), "unknown-key"),
    ("not in keyring", lambda: Case(key=None), "unknown-key"),
    ("key does not own the signing key",
     lambda: with_key(subkeys=(subkey(ENCRYPTING, "e"),)), "unknown-key"),
    ("another primary", lambda: with_key(fingerprint="D" * 40, subkeys=()), "unknown-key"),
    # 3. not revoked
    ("binding revoked", lambda: with_binding(revoked=True), "key-revoked"),
    ("primary revoked", lambda: with_key(revoked=True), "key-revoked"),
    ("signing subkey revoked", lambda: with_subkey(revoked=True), "key-revoked"),
    ("REVKEYSIG", lambda: with_sig(outcome="revoked-key"), "key-revoked"),
    ("only another subkey revoked",
     lambda: with_key(subkeys=(subkey(SIGNING, "s"), subkey(ENCRYPTING, "e", revoked=True))),
     "accepted"),
    # 4. not expired when it signed
    ("primary expired before", lambda: with_key(expires=SIGNED - SECOND), "key-expired"),
    ("primary expired at", lambda: with_key(expires=SIGNED), "key-expired"),
    ("subkey expired before", lambda: with_subkey(expires=SIGNED - SECOND), "key-expired"),
    ("primary expired after",
     lambda: Case(u=message(sig(outcome="expired-key")), key=key(expires=SIGNED + SECOND)),
     "accepted"),
    ("subkey expired after", lambda: with_subkey(expires=NOW - SECOND), "accepted"),
    ("expires in future", lambda: with_key(expires=NOW + timedelta(days=365)), "accepted"),
    # 5. team status
    ("suspended", lambda: with_binding(status="suspended"), "team-not-allowed"),
    ("listed", lambda: with_binding(status="listed"), "team-not-allowed"),
    ("certified", lambda: with_binding(status="certified"), "accepted"),
    ("listed allowed by policy",
     lambda: dataclasses.replace(with_policy(allowed_statuses=("listed",)),
                                 binding=binding(status="listed")),
     "accepted"),
    # 6. freshness window
    ("too old", lambda: with_sig(created=NOW - MAX_AGE - SECOND), "stale-signature"),
    ("exactly max age", lambda: with_sig(created=NOW - MAX_AGE), "accepted"),
    ("exactly future skew", lambda: with_sig(created=NOW + SKEW), "accepted"),
    ("too far in future", lambda: with_sig(created=NOW + SKEW + SECOND), "stale-signature"),
    ("years ago", lambda: with_sig(created=NOW - timedelta(days=3650)), "stale-signature"),
    ("EXPSIG", lambda: with_sig(outcome="expired-sig"), "stale-signature"),
    ("shorter window", lambda: with_policy(max_signature_age=timedelta(minutes=30)),
     "stale-signature"),
    # 7. protected To
    ("protected To elsewhere", lambda: to(OTHER), "wrong-recipient"),
    ("protected To empty", lambda: to(), "wrong-recipient"),
    ("protected To ours", lambda: to(INTAKE), "accepted"),
    ("ours among others", lambda: to(OTHER, "reports@clearinghouse.example"), "accepted"),
    ("intake address case",
     lambda: dataclasses.replace(to(INTAKE), policy=Policy(intake_addresses=(INTAKE.upper(),))),
     "accepted"),
    ("no protected To", lambda: Case(u=message(sig(), protected_to=None)), "accepted"),
    # 8. sender binding
    ("domain: empty From", lambda: senders("domain", ()), "sender-mismatch"),
    ("domain: two From", lambda: senders("domain", (TEAM, TEAM)), "sender-mismatch"),
    ("domain: other domain", lambda: senders("domain", ("cert@evil.example",)),
     "sender-mismatch"),
    ("domain: subdomain", lambda: senders("domain", ("cert@mail.alpha.example",)),
     "sender-mismatch"),
    ("domain: other local part", lambda: senders("domain", ("boss@alpha.example",)), "accepted"),
    ("domain: case", lambda: senders("domain", ("Cert@ALPHA.Example",)), "accepted"),
    ("domain: protected From other", lambda: senders("domain", (TEAM,), ("x@evil.example",)),
     "sender-mismatch"),
    ("domain: protected From same", lambda: senders("domain", (TEAM,), ("y@alpha.example",)),
     "accepted"),
    ("domain: two protected From",
     lambda: senders("domain", (TEAM,), (TEAM, "x@alpha.example")), "sender-mismatch"),
    ("address: exact", lambda: senders("address", (TEAM,), (TEAM,)), "accepted"),
    ("address: other local part", lambda: senders("address", ("boss@alpha.example",)),
     "sender-mismatch"),
    ("address: protected other", lambda: senders("address", (TEAM,), ("boss@alpha.example",)),
     "sender-mismatch"),
    ("off: empty From", lambda: senders("off", ()), "accepted"),
    ("off: two From", lambda: senders("off", (TEAM, "x@evil.example")), "accepted"),
    ("off: other domain", lambda: senders("off", ("x@evil.example",), ("y@evil.example",)),
     "accepted"),
]
# fmt: on


@pytest.mark.parametrize(("build", "expected"), [pytest.param(b, e, id=i) for i, b, e in CASES])
def test_authenticate(build: Callable[[], Case], expected: str) -> None:
    assert verdict(build()) == expected


def test_accepted_names_the_binding_the_signing_key_and_the_time() -> None:
    result = Case().run()
    assert result == Authenticated(binding(), SIGNING, SIGNED)
    assert result.signed_at.tzinfo is not None


def test_team_comes_from_the_binding_not_the_message() -> None:
    """A From naming another team changes nothing about which team is authenticated."""
    case = Case(
        u=message(sig(), outer_from=("cert@beta.example",)),
        policy=dataclasses.replace(POLICY, sender_binding="off"),
    )
    result = case.run()
    assert isinstance(result, Authenticated) and result.binding.handle == "alpha"


# --- order of the checks ----------------------------------------------------------------


# Each fault alone gives its reason; all together give the first in the docstring's order.
def _u(c: Case, **changes: Any) -> Case:
    return dataclasses.replace(c, u=dataclasses.replace(c.u, **changes))


def _gpg(c: Case, **changes: Any) -> Case:
    return _u(c, verification=dataclasses.replace(c.u.verification, **changes))


def _key(c: Case, **changes: Any) -> Case:
    assert c.key is not None
    return dataclasses.replace(c, key=dataclasses.replace(c.key, **changes))


# fmt: off
FAULTS: list[tuple[str, Callable[[Case], Case]]] = [
    ("multiple-signatures", lambda c: _gpg(c, signatures=c.u.verification.signatures * 2)),
    ("bad-signature", lambda c: _gpg(c, problems=("BADMDC",))),
    ("unknown-key", lambda c: dataclasses.replace(c, binding=None)),
    ("key-revoked", lambda c: _key(c, revoked=True)),
    ("key-expired", lambda c: _key(c, expires=SIGNED - SECOND)),
    ("team-not-allowed", lambda c: dataclasses.replace(c, binding=binding(status="suspended"))),
    ("stale-signature", lambda c: dataclasses.replace(c, now=NOW + timedelta(days=60))),
    ("wrong-recipient", lambda c: _u(c, protected_to=(OTHER,))),
    ("sender-mismatch", lambda c: _u(c, outer_from=("x@evil.example",))),
]
# fmt: on


def test_checks_run_in_the_documented_order() -> None:
    reasons = []
    for first in range(len(FAULTS)):
        case = Case()
        for _, fault in reversed(FAULTS[first:]):  # so that no later fault undoes an earlier
            case = fault(case)
        reasons.append(verdict(case))
    assert reasons == [name for name, _ in FAULTS]


@pytest.mark.parametrize(("name", "fault"), FAULTS, ids=[n for n, _ in FAULTS])
def test_each_fault_alone(name: str, fault: Callable[[Case], Case]) -> None:
    assert verdict(fault(Case())) == name
