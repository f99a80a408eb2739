"""Every gpg process has a time limit: killed with its process group, a clear result.

The slow input is real: random key packets for the home's own encryption subkey inside
an encrypted layer, which gpg-agent tries one X25519 operation at a time (minutes for
these), so the limit of one or two seconds is what ends each call.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hostile import pkesk_flood, random_pkesk
from support import gpg_processes

from contract.errors import GnuPGError
from keys.gpg import GnuPG
from keys.gpg_process import TimedGPG
from keys.packets import dearmor

PACKETS = 120_000  # half of them before the key packet that works, in gpg's order


@pytest.fixture(scope="module")
def home_and_flood(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A GnuPG home with a key, and a message to it that takes gpg minutes."""
    home = tmp_path_factory.mktemp("timeout")
    gpg = GnuPG(home)
    fingerprint = gpg.generate_key("Slow", "slow@x.example")
    details = gpg.details(fingerprint)
    assert details is not None
    [sub] = [s for s in details.subkeys if "e" in s.capabilities]
    key_id = bytes.fromhex(sub.fingerprint[-16:])
    tail = _tail(gpg, fingerprint)
    inner = pkesk_flood(key_id, PACKETS * len(random_pkesk(key_id)) + len(tail), tail)
    return home, _nested(home, fingerprint, inner)


def _tail(gpg: GnuPG, fingerprint: str) -> bytes:
    return dearmor(gpg.encrypt(b"x", [fingerprint]).encode())


def _nested(home: Path, fingerprint: str, inner: bytes) -> bytes:
    args = ["gpg", "--homedir", str(home), "--batch", "--trust-model", "always"]
    args += ["--no-literal", "--compress-algo", "none", "--recipient", fingerprint, "--encrypt"]
    return subprocess.run(args, input=inner, capture_output=True, check=True).stdout


def test_a_decryption_past_the_limit_is_killed_with_its_group(
    home_and_flood: tuple[Path, bytes],
) -> None:
    home, flood = home_and_flood
    result = GnuPG(home, timeout=1).decrypt(flood)
    assert result.stopped == "timeout" and result.problems == ("STOPPED timeout",)
    assert not result.decrypted and result.data == b""
    assert gpg_processes(home, "--decrypt") == []


def test_key_packets_met_inside_the_encryption_stop_gpg_before_its_limit(
    home_and_flood: tuple[Path, bytes],
) -> None:
    """gpg reports each key packet as it meets it (ENC_TO): past the limit it is stopped,
    long before the time limit (here ten minutes) could."""
    home, flood = home_and_flood
    result = GnuPG(home, timeout=600).decrypt(flood, max_key_packets=16)
    assert result.stopped == "key-packets" and not result.decrypted
    assert gpg_processes(home, "--decrypt") == []


def test_python_gnupg_calls_have_the_same_limit(home_and_flood: tuple[Path, bytes]) -> None:
    """The processes python-gnupg starts itself (key management) are killed as well."""
    home, flood = home_and_flood
    timed = TimedGPG(gnupghome=str(home), timeout=1)
    with pytest.raises(GnuPGError, match="did not finish within 1 s"):
        timed.decrypt(flood)
    assert gpg_processes(home, "--decrypt") == []
    assert timed.list_keys()  # an ordinary call still works, and its timer is cancelled


def test_signing_past_the_limit_is_an_error_not_a_result(
    home_and_flood: tuple[Path, bytes],
) -> None:
    home, flood = home_and_flood
    gpg = GnuPG(home, timeout=1)
    # What sign and encrypt read their armored output through; no signing can be made
    # slow from outside, so a decryption that cannot finish stands in for one.
    with pytest.raises(GnuPGError, match="did not finish in time"):
        gpg._run(["--decrypt"], flood).armored("decryption", "END_DECRYPTION")
