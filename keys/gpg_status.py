"""GnuPG's status lines read into facts: what was decrypted, who signed, what went wrong.

In: a gpg process's exit status, its stderr (where `--status-fd 2` writes the
`[GNUPG:]` lines) and its output. Out: a `CryptoResult` with one `SignatureFact` per
signature. GnuPG 2.2 and 2.4 word some outcomes differently (2.4 adds `FAILURE gpg-exit`
where 2.2 only exits 2); both are read into the same facts here, and
tests/keys/test_gpg_versions.py feeds each version's real lines for every outcome the
policy tells apart. Judging the facts is `keys/policy.py`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

STATUS_PREFIX = "[GNUPG:] "


@dataclass(frozen=True)
class SignatureFact:
    """One signature as GnuPG reported it (one NEWSIG ... block)."""

    outcome: str  # good | bad | expired-sig | expired-key | revoked-key | error
    keyid: str | None = None
    signing_fingerprint: str | None = None  # the (sub)key that made it, from VALIDSIG
    primary_fingerprint: str | None = None  # its primary key, from VALIDSIG
    created: datetime | None = None
    error_code: int | None = None  # ERRSIG rc: 9 = no public key


@dataclass(frozen=True)
class CryptoResult:
    """What one decrypt or verify produced, with every fact the policy needs."""

    returncode: int
    data: bytes = b""
    decrypted: bool = False  # DECRYPTION_OKAY and END_DECRYPTION seen, no failure
    encrypted: bool = False  # the input was encrypted at all (BEGIN_DECRYPTION/ENC_TO)
    no_secret_key: bool = False
    signatures: tuple[SignatureFact, ...] = ()
    plaintext_packets: int = 0
    problems: tuple[str, ...] = ()  # ERROR/FAILURE/BADMDC/... status keywords
    output_limited: bool = False  # gpg stopped at --max-output (a compression bomb?)
    stopped: str | None = None  # killed: "timeout", or why its check stopped it

    @property
    def clean(self) -> bool:
        """GnuPG exited 0 and reported no problem: the precondition of everything."""
        return self.returncode == 0 and not self.problems


KEY_PACKETS = "key-packets"  # why a decryption was stopped: too many key packets met
_ENC_TO = b"[GNUPG:] ENC_TO "


StopWhen = Callable[[bytes], str | None] | None  # gpg's stderr so far -> why stop it


def key_packets_over(limit: int) -> Callable[[bytes], str | None]:
    """A check of gpg's status output so far: KEY_PACKETS once it met more than `limit`.

    gpg writes ENC_TO for each key packet as it meets it, also for those nested inside
    the encryption, which no inspection before gpg can count (keys/packets.py).
    """
    return lambda stderr: KEY_PACKETS if stderr.count(_ENC_TO) > limit else None


PROBLEM_KEYWORDS = frozenset(
    {"ERROR", "FAILURE", "BADMDC", "DECRYPTION_FAILED", "NODATA", "UNEXPECTED", "BADARMOR"}
)


def _is_problem(keyword: str, args: list[str]) -> bool:
    """Whether a status line reports a problem of its own.

    `FAILURE gpg-exit CODE` is not one: gpg restates its own non-zero exit on the way out
    (when no other FAILURE was written), and that exit is `returncode`, which the policy
    and the decryption check read anyway. GnuPG 2.2 writes it for exit 1 only, 2.4 for
    exit 2 too: read as a problem, a signer unknown to the keyring (ERRSIG, exit 2) made
    2.4's clean decryption a failed one. GPGME ignores this line the same way.
    """
    if keyword == "FAILURE" and args[:1] == ["gpg-exit"]:
        return False
    return keyword in PROBLEM_KEYWORDS


def timestamp(value: str) -> datetime | None:
    if not value or not value.isdigit() or value == "0":
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def status_lines(stderr: str) -> Iterable[tuple[str, list[str]]]:
    for line in stderr.splitlines():
        if line.startswith(STATUS_PREFIX):
            keyword, *args = line[len(STATUS_PREFIX) :].split(" ")
            yield keyword, args


class _SignatureCollector:
    """Groups status lines into one `SignatureFact` per NEWSIG block."""

    _OUTCOMES = {
        "GOODSIG": "good",
        "BADSIG": "bad",
        "EXPSIG": "expired-sig",
        "EXPKEYSIG": "expired-key",
        "REVKEYSIG": "revoked-key",
        "ERRSIG": "error",
    }

    def __init__(self) -> None:
        self.facts: list[dict[str, object]] = []

    def feed(self, keyword: str, args: list[str]) -> None:
        if keyword == "NEWSIG":
            self.facts.append({"outcome": "error"})
            return
        if not self.facts and (keyword in self._OUTCOMES or keyword == "VALIDSIG"):
            self.facts.append({"outcome": "error"})  # gpg < 2.1 emits no NEWSIG
        if keyword in self._OUTCOMES:
            current = self.facts[-1]
            current["outcome"] = self._OUTCOMES[keyword]
            current["keyid"] = args[0] if args else None
            if keyword == "ERRSIG" and len(args) >= 6:
                current["error_code"] = int(args[5]) if args[5].isdigit() else None
                current["created"] = timestamp(args[4])
        elif keyword == "VALIDSIG" and len(args) >= 3:
            current = self.facts[-1]
            current["signing_fingerprint"] = args[0].upper()
            current["created"] = timestamp(args[2])
            current["primary_fingerprint"] = (args[9] if len(args) >= 10 else args[0]).upper()

    def result(self) -> tuple[SignatureFact, ...]:
        return tuple(SignatureFact(**f) for f in self.facts)  # type: ignore[arg-type]


def parse_status(returncode: int, stderr: str, data: bytes) -> CryptoResult:
    """Turn GnuPG's status stream into a `CryptoResult` (pure; tested directly)."""
    sigs = _SignatureCollector()
    seen: set[str] = set()
    problems: list[str] = []
    plaintexts = layers = 0
    for keyword, args in status_lines(stderr):
        seen.add(keyword)
        sigs.feed(keyword, args)
        if keyword == "PLAINTEXT":
            plaintexts += 1
        if keyword == "BEGIN_DECRYPTION":
            layers += 1
        if _is_problem(keyword, args):
            problems.append(keyword + (" " + " ".join(args) if args else ""))
    if layers > 1:
        # gpg decrypts encrypted packets nested inside encrypted packets on its own; only
        # one layer may be removed (one layer only), so the whole result is refused.
        problems.append(f"NESTED_ENCRYPTION {layers}")
    decrypted = (
        "DECRYPTION_OKAY" in seen and "END_DECRYPTION" in seen and "DECRYPTION_FAILED" not in seen
    )
    return CryptoResult(
        returncode=returncode,
        data=data,
        decrypted=decrypted,
        encrypted=bool(seen & {"BEGIN_DECRYPTION", "ENC_TO", "NO_SECKEY", "DECRYPTION_FAILED"}),
        no_secret_key="NO_SECKEY" in seen and not decrypted,
        signatures=sigs.result(),
        plaintext_packets=plaintexts,
        problems=tuple(problems),
        # Not a status line: gpg only logs it. Safe to read from stderr because gpg runs
        # with --no-verbose, so no attacker-chosen text (literal file names) is logged.
        output_limited="exceeded --max-output limit" in stderr,
    )
