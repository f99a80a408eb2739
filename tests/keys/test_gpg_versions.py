"""GnuPG 2.2 (Debian 12) and 2.4 (Debian 13) are read into the same facts and verdicts.

tests/data/gpg-status holds the status lines each version really wrote for every outcome
the policy tells apart (made by tests/keys/capture_gpg_status.py, see the README there).
Each capture is fed to `parse_status`, then judged as the gateway judges a message: the
one-clean-layer check of a decryption (keys/unwrap.py), then the signature rule
(keys/policy.py), with the signer registered. Both versions must give the same facts
and the verdict written here.
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keys.gpg import GnuPG
from keys.gpg_status import CryptoResult, SignatureFact, parse_status
from keys.key_details import KeyDetails
from keys.policy import Binding, Policy, authenticate
from keys.shapes import Limits
from keys.unwrap import Unwrapped, Unwrapper

DATA = Path(__file__).parents[1] / "data" / "gpg-status"
SUPPORTED = ("2.2", "2.4")  # Debian 12, Debian 13

# scenario: (the gateway's verdict, each signature's outcome and whose it is)
EXPECTED: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "good": ("accepted", (("good", "signer"),)),
    "good-detached": ("accepted", (("good", "signer"),)),
    # gpg ends inside the encrypted packet: no DECRYPTION_OKAY, so no clean layer.
    "bad": ("decrypt-failed", (("bad", "signer"),)),
    "bad-detached": ("bad-signature", (("bad", "signer"),)),
    "unknown-key": ("unknown-key", (("error", "signer"),)),
    "unknown-key-detached": ("unknown-key", (("error", "signer"),)),
    "expired-key": ("key-expired", (("expired-key", "signer"),)),
    "expired-since": ("accepted", (("expired-key", "signer"),)),
    "revoked-key": ("key-revoked", (("revoked-key", "signer"),)),
    "no-mdc": ("decrypt-failed", (("good", "signer"),)),
    "several-signatures": ("multiple-signatures", (("good", "signer"), ("good", "second"))),
    "several-signatures-one-unknown": (
        "multiple-signatures",
        (("good", "signer"), ("error", "second")),
    ),
    "nested-encryption": ("decrypt-failed", ()),
    "no-secret-key": ("decrypt-failed", ()),
}


@dataclass(frozen=True)
class Capture:
    header: dict[str, str]
    status: str

    @classmethod
    def read(cls, path: Path) -> Capture:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        header = dict(line[2:].strip().split(": ", 1) for line in lines if line.startswith("# "))
        return cls(header, "".join(line for line in lines if not line.startswith("#")))

    def result(self) -> CryptoResult:
        return parse_status(int(self.header["exit"]), self.status, b"")

    def whose(self, sig: SignatureFact) -> str:
        """Which header key made `sig` ("signer", "second"), by fingerprint or key ID."""
        for role in ("signer", "second"):
            fpr = self.header.get(role, "")
            if fpr and (sig.primary_fingerprint == fpr or fpr.endswith(sig.keyid or "-")):
                return role
        return "nobody"


def series(directory: Path) -> str:
    """ "2.4" for gnupg-2.4.7: the captures are remade with whatever patch level is there."""
    return directory.name.removeprefix("gnupg-").rsplit(".", 1)[0]


def captures(scenario: str) -> dict[str, Capture]:
    """This scenario's capture from each GnuPG version, by series ("2.2", "2.4")."""
    paths = sorted(DATA.glob(f"gnupg-*/{scenario}.status"))
    return {series(path.parent): Capture.read(path) for path in paths}


def facts(capture: Capture) -> tuple[object, ...]:
    """What the gateway reads from a result, with fingerprints named by role."""
    r = capture.result()
    sigs = tuple(
        (s.outcome, s.error_code, capture.whose(s), s.created is not None) for s in r.signatures
    )
    return (r.returncode, r.decrypted, r.encrypted, r.no_secret_key, r.plaintext_packets,
            r.clean, bool(r.problems), sigs)  # fmt: skip


def verdict(capture: Capture, unwrapper: Unwrapper) -> str:
    """The reason code the gateway gives, or "accepted"."""
    result = capture.result()
    decrypting = capture.header["operation"] == "decrypt"
    if decrypting:
        refusal = unwrapper._not_one_clean_layer(result)
        if refusal is not None:
            return refusal.reason
    signer = capture.header["signer"]
    expires = capture.header.get("expires")
    key = KeyDetails(
        fingerprint=signer,
        user_ids=(),
        capabilities="sc",
        created=None,
        expires=datetime.fromtimestamp(int(expires), tz=UTC) if expires else None,
        revoked=False,  # the revoked key's refusal must come from gpg's REVKEYSIG alone
    )
    binding = Binding(1, "alpha", "accredited", "cert@alpha.example", signer, revoked=False)
    message = Unwrapped(
        entity=email.message.Message(),
        signed_bytes=b"",
        verification=result,
        encrypted=decrypting,
        outer_from=(),
        protected_from=(),
        protected_to=None,
    )
    now = datetime.fromtimestamp(int(capture.header["captured"]), tz=UTC)
    outcome = authenticate(message, binding, key, Policy(sender_binding="off"), now)
    return getattr(outcome, "reason", "accepted")


@pytest.fixture
def unwrapper(tmp_path: Path) -> Unwrapper:
    return Unwrapper(GnuPG(tmp_path / "gateway"), Limits())


def test_each_supported_gnupg_has_every_scenario_captured() -> None:
    versions = sorted(DATA.glob("gnupg-*"))
    assert [series(version) for version in versions] == list(SUPPORTED)
    for version in versions:
        names = {path.stem for path in version.glob("*.status")}
        assert names == set(EXPECTED), version.name


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_both_versions_give_the_same_facts_and_verdict(scenario: str, unwrapper: Unwrapper) -> None:
    expected_verdict, expected_signatures = EXPECTED[scenario]
    by_version = captures(scenario)
    assert len(by_version) == len(SUPPORTED)
    for version, capture in by_version.items():
        got = [(s.outcome, capture.whose(s)) for s in capture.result().signatures]
        assert tuple(got) == expected_signatures, version
        assert verdict(capture, unwrapper) == expected_verdict, version
    assert len({facts(capture) for capture in by_version.values()}) == 1, {
        version: facts(capture) for version, capture in by_version.items()
    }


def test_gnupg_24_restating_its_exit_status_is_not_a_problem_of_its_own() -> None:
    """2.4 ends an unknown signer's clean decryption with `FAILURE gpg-exit`; 2.2 does not."""
    by_version = captures("unknown-key")
    assert "FAILURE gpg-exit" in by_version["2.4"].status
    assert "FAILURE" not in by_version["2.2"].status
    for capture in by_version.values():
        r = capture.result()
        assert r.decrypted and r.problems == () and r.returncode == 2
        assert [(s.outcome, s.error_code) for s in r.signatures] == [("error", 9)]


def test_a_failure_at_a_named_step_stays_a_problem() -> None:
    """Only the exit restatement is set aside: any other FAILURE location still counts."""
    r = parse_status(2, "[GNUPG:] FAILURE decrypt 33554437\n", b"")
    assert r.problems == ("FAILURE decrypt 33554437",)
