"""The only module that talks to GnuPG: one isolated home, strict options, typed results.

Everything else in the gateway sees `CryptoResult`, `SignatureFact` and `KeyDetails`,
never a python-gnupg result: `valid` there means only "GOODSIG" (not trusted, not ours),
so the facts are read from GnuPG's status lines (`keys/gpg_status.py`) and judged in
`keys/policy.py`. The process itself is run by `keys/gpg_process.py`.

gpg always runs with `--batch --no-tty --no-verbose` (python-gnupg adds those), an
explicit trust model (`always`: trust comes from the registry's fingerprint pins, never
from the GnuPG web of trust), no key retrieval or import from messages, a cap on the
bytes it may output (compression bombs), a time limit. Recipients by fingerprint only.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from contract.errors import GnuPGError, UsageError
from keys import gpg_process
from keys.gpg_status import (
    PROBLEM_KEYWORDS,
    CryptoResult,
    StopWhen,
    key_packets_over,
    parse_status,
    status_lines,
)
from keys.key_details import KeyDetails, key_details

# Options that change what a gpg run costs, not what it does: the bench's floor
# (bench/floor.py) runs bare gpg with them too. Without --no-random-seed-file every run
# that makes random numbers (signing, encrypting) locks GNUPGHOME/random_seed to read it
# and again to rewrite it on exit, and libgcrypt waits at least 250 ms when another gpg
# holds that lock: with four gpg processes at once that left the machine idle a fifth of
# the time (bench/throughput.py: 73-79 % busy with it, 88-90 % without). The seed file only
# carries entropy from one run to the next; libgcrypt seeds itself from the kernel's
# getrandom() in every run either way.
COST_OPTIONS = ("--no-random-seed-file",)


def _options(max_output: int) -> list[str]:
    return [
        *COST_OPTIONS,
        "--trust-model",
        "always",
        "--no-auto-key-retrieve",
        "--no-auto-key-import",
        "--auto-key-locate",
        "local",
        "--no-include-key-block",
        "--disable-dirmngr",
        "--no-greeting",
        "--no-symkey-cache",
        "--max-output",
        str(max_output),
    ]


_FINGERPRINT = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")


def _fingerprints(recipients: Sequence[str]) -> list[str]:
    """Recipients by full fingerprint only: never a user ID or key ID gpg would look up."""
    fprs = [r.upper() for r in recipients]
    bad = [r for r in fprs if not _FINGERPRINT.match(r)]
    if bad or not fprs:
        raise ValueError(f"recipients must be full fingerprints, got {bad or 'none'}")
    return fprs


class GnuPG:
    """One isolated GnuPG home. Thread-safe in the way gpg itself is (one process a call).

    With `max_parallel`, at most that many gpg processes run at once, however many
    threads call: `[worker] concurrency` caps the gateway's GnuPG work this way. With
    `nice`, each gpg process runs that much below the caller's CPU priority
    (`[worker] gpg_nice`; see `_lower_priority`).
    """

    def __init__(
        self,
        home: Path,
        *,
        max_output: int = 26_214_400,
        extra_options: Sequence[str] = (),
        max_parallel: int | None = None,
        nice: int = 0,
        timeout: float = 60.0,
    ) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        self.home = home
        options = _options(max_output) + list(extra_options)
        self._gpg = gpg_process.TimedGPG(gnupghome=str(home), options=options, timeout=timeout)
        # latin-1 maps every byte: gpg's stderr can carry attacker-chosen non-UTF-8 bytes,
        # and python-gnupg decodes it strictly in a reader thread that would die on them
        # (losing the status lines after). User IDs are re-decoded as UTF-8 in _details.
        self._gpg.encoding = "latin-1"
        # Key listings, by (fingerprint, secret), for as long as the keyring is unchanged.
        self._listed: dict[tuple[str, bool], KeyDetails | None] = {}
        self._listed_state: tuple[int, ...] = ()
        self._listed_lock = threading.Lock()
        self._nice = nice
        self._slots: AbstractContextManager[object] = (
            threading.BoundedSemaphore(max_parallel) if max_parallel else nullcontext()
        )

    # --- keys -------------------------------------------------------------------------

    def generate_key(self, name: str, email: str, *, expire: str = "0") -> str:
        """Make an ed25519 signing key with a cv25519 encryption subkey, no passphrase."""
        params = (
            "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign\n"
            "Subkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
            f"Name-Real: {name}\nName-Email: {email}\nExpire-Date: {expire}\n"
            "%no-protection\n%commit\n"
        )
        with self._slots:
            result = self._gpg.gen_key(params.encode("utf-8"))  # bytes: user IDs are UTF-8
        if not result.fingerprint:
            raise GnuPGError(f"key generation failed: {result.stderr[-300:]}")
        return str(result.fingerprint).upper()

    def scan(self, data: bytes) -> list[dict[str, object]]:
        """List the keys in `data` without importing them."""
        with self._slots:
            return list(self._gpg.scan_keys_mem(data))

    def contains_secret(self, data: bytes) -> bool:
        return any(k.get("type") in ("sec", "ssb") for k in self.scan(data))

    def import_keys(self, data: bytes, passphrase: str | None = None) -> list[str]:
        """Import `data`; returns the primary fingerprints it carried."""
        extra = ["--pinentry-mode", "loopback"] if passphrase is not None else None
        with self._slots:
            result = self._gpg.import_keys(data, passphrase=passphrase, extra_args=extra)
        fprs = {str(f).upper() for f in result.fingerprints if f}
        primaries = {str(k["fingerprint"]).upper() for k in self.scan(data)}
        return sorted(fprs & primaries or primaries & set(self._known()))

    def public_keys(self) -> list[KeyDetails]:
        """Every public key in the keyring, with its subkeys."""
        with self._slots:
            return [key_details(k) for k in self._gpg.list_keys()]

    def _known(self) -> list[str]:
        with self._slots:
            return [str(k["fingerprint"]).upper() for k in self._gpg.list_keys()]

    def details(self, fingerprint: str, *, secret: bool = False) -> KeyDetails | None:
        """The key's details, None if it is not in the keyring.

        Remembered until the keyring changes (in this process or any other): every
        message asks for its signer's key and for its team's, and a listing costs a gpg
        process. Nothing in `KeyDetails` depends on the time of asking.
        """
        wanted, state = (fingerprint.upper(), secret), self._keyring_state()
        with self._listed_lock:
            if state != self._listed_state:
                self._listed, self._listed_state = {}, state
            if wanted in self._listed:
                return self._listed[wanted]
        with self._slots:
            keys = self._gpg.list_keys(secret=secret, keys=[fingerprint])
        match = [k for k in keys if str(k["fingerprint"]).upper() == fingerprint.upper()]
        found = key_details(match[0]) if match else None
        with self._listed_lock:
            if state == self._listed_state:  # else it changed meanwhile: not worth keeping
                self._listed[wanted] = found
        return found

    def _keyring_state(self) -> tuple[int, ...]:
        """What changes whenever gpg adds, changes or deletes a public or secret key."""
        stamps: list[int] = []
        for name in ("pubring.kbx", "private-keys-v1.d"):
            try:
                st = os.stat(self.home / name)
            except FileNotFoundError:
                stamps += (0, 0, 0)
                continue
            stamps += (st.st_mtime_ns, st.st_size, st.st_ino)
        return tuple(stamps)

    def keys_for_address(self, address: str) -> list[KeyDetails]:
        """Public keys with a user ID for exactly `address` (gpg's `<address>` match)."""
        with self._slots:
            keys = self._gpg.list_keys(keys=[f"<{address}>"])
        return [key_details(k) for k in keys]

    def export_public(self, fingerprint: str) -> str:
        with self._slots:
            armored = str(self._gpg.export_keys(fingerprint, minimal=True))
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise GnuPGError(f"no public key {fingerprint} in the gateway keyring")
        return armored

    def delete_public(self, fingerprint: str) -> None:
        with self._slots:
            self._gpg.delete_keys(fingerprint)

    # --- decrypt, verify, sign, encrypt: one gpg process each, no threads ------------------

    def _run(
        self, args: list[str], data: bytes, passphrase: str | None = None, stop: StopWhen = None
    ) -> _Ran:
        """Run gpg once over `data` on its stdin; its exit status, stderr and stdout.

        Not through python-gnupg's `_handle_io`: that starts three threads per call (a
        writer and two readers), and in `serve`, where worker threads contend for the
        interpreter lock, each thread start waited for a lock hand-off (a tenth of a
        worker's time under load, measured with py-spy). python-gnupg still builds the
        command line (`make_args`), so every call gets the same isolated home and options.
        """
        if passphrase is not None:
            if not self._gpg.is_valid_passphrase(passphrase):
                raise UsageError("a passphrase cannot contain line breaks or NUL bytes")
            data = passphrase.encode(self._gpg.encoding) + b"\n" + data
        argv = self._gpg.make_args(args, passphrase is not None)
        try:
            with self._slots:
                env, nice, timeout = self._gpg.env, self._nice, self._gpg.timeout
                return _Ran(*gpg_process.spawn(argv, data, env, nice, timeout, stop))
        except OSError as exc:
            raise GnuPGError(f"could not run gpg: {exc}") from exc

    def decrypt(
        self, data: bytes, passphrase: str | None = None, *, max_key_packets: int | None = None
    ) -> CryptoResult:
        stop = key_packets_over(max_key_packets) if max_key_packets else None
        return self._run(["--decrypt"], data, passphrase, stop).result()

    def verify_detached(self, signed: bytes, signature: bytes) -> CryptoResult:
        with tempfile.TemporaryDirectory(dir=self.home, prefix="sig-") as tmp:
            sig_path = Path(tmp) / "signature.asc"
            sig_path.write_bytes(signature)
            ran = self._run(["--verify", str(sig_path), "-"], signed)
        return ran.result(with_data=False)

    def verify_clearsigned(self, data: bytes) -> CryptoResult:
        """Verify an inline (cleartext-signed) message and return the signed text.

        Run as `--verify --output -`, not `--decrypt`: the armor after "BEGIN PGP
        SIGNATURE" may hold any packets, and only in verify mode does gpg refuse encrypted
        ones (UNEXPECTED) instead of decrypting them with the gateway's key.
        """
        return self._run(["--verify", "--output", "-"], data).result()

    def sign_encrypt(
        self, data: bytes, recipients: list[str], signer: str, passphrase: str | None = None
    ) -> str:
        """One combined OpenPGP message, signed by `signer`, encrypted to `recipients`.

        The signer is named with `--local-user`: python-gnupg's `sign=` names it with
        `--default-key`, which costs gpg a second key lookup (0.9 ms of its 4.4 ms CPU
        per reply, measured over 150 calls).
        """
        args = ["--encrypt", *_recipient_args(recipients), "--armor", "--sign"]
        ran = self._run([*args, "--local-user", signer], data, passphrase)
        return ran.armored("sign+encrypt", "END_ENCRYPTION", "SIG_CREATED")

    def sign_detached(self, data: bytes, signer: str, passphrase: str | None = None) -> str:
        args = ["--armor", "--detach-sign", "--local-user", signer]
        return self._run(args, data, passphrase).armored("signing", "SIG_CREATED")

    def encrypt(self, data: bytes, recipients: list[str]) -> str:
        args = ["--encrypt", *_recipient_args(recipients), "--armor"]
        return self._run(args, data).armored("encryption", "END_ENCRYPTION")


@dataclass(frozen=True)
class _Ran:
    """One finished gpg process: what the wrappers above read their result from."""

    returncode: int
    stderr: str
    stdout: bytes
    stopped: str | None = None  # killed: by the time limit, or by the stop condition

    def result(self, *, with_data: bool = True) -> CryptoResult:
        if self.stopped:  # killed: nothing it wrote is a result
            return CryptoResult(
                self.returncode, problems=(f"STOPPED {self.stopped}",), stopped=self.stopped
            )
        return parse_status(self.returncode, self.stderr, self.stdout if with_data else b"")

    def armored(self, what: str, *required: str) -> str:
        """The ASCII-armored output, if gpg exited 0 and reported every `required` step."""
        if self.stopped:
            raise GnuPGError(f"{what} failed: gpg did not finish in time and was stopped")
        seen = {keyword for keyword, _ in status_lines(self.stderr)}
        missing = [keyword for keyword in required if keyword not in seen]
        if self.returncode != 0 or missing or not self.stdout:
            problems = sorted(seen & PROBLEM_KEYWORDS) or missing
            raise GnuPGError(f"{what} failed (gpg exit {self.returncode}): {problems}")
        return self.stdout.decode("ascii")


def _recipient_args(recipients: Sequence[str]) -> list[str]:
    return [arg for fpr in _fingerprints(recipients) for arg in ("--recipient", fpr)]
