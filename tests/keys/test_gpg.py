"""keys/gpg.py: the status-line parser on crafted streams, then real GnuPG round trips.

`parse_status` is pure, so every fact the policy relies on is pinned here line by line;
the round trips run real gpg in fresh homes under tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import keys.gpg
import keys.gpg_process
from contract.errors import GnuPGError, UsageError
from keys.gpg import GnuPG
from keys.gpg_status import SignatureFact, parse_status

SUB = "1D306A7B37C01AEF80A2C95DE82E836FB0573843"  # a signing subkey
PRIMARY = "97F054FEF199C31A7511615BDEFB8CF24A75189E"  # its primary key
KEYID = SUB[-16:]
T = 1_795_409_762
WHEN = datetime.fromtimestamp(T, tz=UTC)


def status(*lines: str) -> str:
    return "".join(f"[GNUPG:] {line}\n" for line in lines)


def validsig(signing: str = SUB, primary: str | None = PRIMARY, ts: int = T) -> str:
    tail = f" {primary}" if primary else ""
    return f"VALIDSIG {signing} 2026-11-23 {ts} 0 4 0 22 10 00{tail}"


def gpg_cli(home: Path, *args: str) -> bytes:
    """The gpg command line on a test home (for what python-gnupg has no call for)."""
    batch = ["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    cmd = ["gpg", "--homedir", str(home), *batch, *args]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


# --- parse_status: signatures ---------------------------------------------------------


def test_good_signature_by_a_subkey_names_subkey_and_primary() -> None:
    r = parse_status(0, status("NEWSIG", f"GOODSIG {KEYID} A <a@a.example>", validsig()), b"x")
    assert r.signatures == (SignatureFact("good", KEYID, SUB, PRIMARY, WHEN, None),)
    assert r.signatures[0].created is not None and r.signatures[0].created.tzinfo is not None
    assert r.clean and r.data == b"x"


def test_validsig_without_the_primary_field_means_the_primary_signed() -> None:
    r = parse_status(0, status("NEWSIG", f"GOODSIG {KEYID} A", validsig(primary=None)), b"")
    assert r.signatures[0].primary_fingerprint == SUB


def test_fingerprints_are_upper_cased() -> None:
    line = validsig(SUB.lower(), PRIMARY.lower())
    [sig] = parse_status(0, status("NEWSIG", f"GOODSIG {KEYID} A", line), b"").signatures
    assert (sig.signing_fingerprint, sig.primary_fingerprint) == (SUB, PRIMARY)


def test_errsig_no_public_key_carries_rc_9_and_its_time() -> None:
    r = parse_status(
        2, status("NEWSIG", f"ERRSIG {KEYID} 22 10 00 {T} 9 -", f"NO_PUBKEY {KEYID}"), b""
    )
    assert r.signatures == (SignatureFact("error", KEYID, None, None, WHEN, 9),)


def test_errsig_other_rc() -> None:
    [sig] = parse_status(2, status("NEWSIG", f"ERRSIG {KEYID} 22 10 00 {T} 4"), b"").signatures
    assert (sig.outcome, sig.error_code) == ("error", 4)


@pytest.mark.parametrize(
    ("keyword", "outcome"),
    [
        ("BADSIG", "bad"),
        ("EXPKEYSIG", "expired-key"),
        ("REVKEYSIG", "revoked-key"),
        ("EXPSIG", "expired-sig"),
        ("GOODSIG", "good"),
    ],
)
def test_each_outcome_keyword(keyword: str, outcome: str) -> None:
    lines = ["NEWSIG", f"{keyword} {KEYID} A <a@a.example>"]
    if keyword != "BADSIG":  # gpg gives VALIDSIG for all but a bad signature
        lines.append(validsig())
    [sig] = parse_status(0, status(*lines), b"").signatures
    assert (sig.outcome, sig.keyid) == (outcome, KEYID)
    assert sig.signing_fingerprint == (None if keyword == "BADSIG" else SUB)


def test_newsig_alone_is_an_error_outcome() -> None:
    [sig] = parse_status(2, status("NEWSIG"), b"").signatures
    assert sig == SignatureFact("error")


def test_one_fact_per_newsig_block_in_order() -> None:
    other = "C" * 40
    r = parse_status(
        1,
        status(
            "NEWSIG",
            f"GOODSIG {KEYID} A",
            validsig(),
            "NEWSIG",
            f"BADSIG {other[-16:]} B",
            "NEWSIG",
            f"GOODSIG {other[-16:]} B",
            validsig(other, other, T + 5),
        ),
        b"",
    )
    assert [s.outcome for s in r.signatures] == ["good", "bad", "good"]
    assert r.signatures[0].primary_fingerprint == PRIMARY
    assert r.signatures[1].signing_fingerprint is None  # VALIDSIG never leaks across blocks
    assert r.signatures[2].signing_fingerprint == other
    assert r.signatures[2].created == WHEN + timedelta(seconds=5)


def test_without_newsig_old_gpg_still_gives_one_fact() -> None:
    r = parse_status(0, status(f"GOODSIG {KEYID} A", validsig()), b"")
    assert [(s.outcome, s.primary_fingerprint) for s in r.signatures] == [("good", PRIMARY)]


def test_no_signature_lines_no_facts() -> None:
    assert parse_status(0, status("PLAINTEXT 62 0", "PLAINTEXT_LENGTH 1"), b"").signatures == ()


# --- parse_status: decryption facts and problems --------------------------------------


def test_clean_decryption() -> None:
    r = parse_status(
        0,
        status(
            "ENC_TO 4654C47B41F19162 18 0",
            "BEGIN_DECRYPTION",
            "PLAINTEXT 62 0",
            "DECRYPTION_OKAY",
            "GOODMDC",
            "END_DECRYPTION",
        ),
        b"hi",
    )
    assert (r.encrypted, r.decrypted, r.no_secret_key, r.plaintext_packets) == (
        True,
        True,
        False,
        1,
    )
    assert r.clean


@pytest.mark.parametrize(
    "keyword",
    [
        "DECRYPTION_FAILED",
        "BADMDC",
        "NODATA 1",
        "BADARMOR",
        "UNEXPECTED 0",
        "FAILURE decrypt 99",
        "ERROR x 1",
    ],
)
def test_problem_keywords_are_reported(keyword: str) -> None:
    r = parse_status(0, status("BEGIN_DECRYPTION", keyword, "END_DECRYPTION"), b"")
    assert r.problems == (keyword,)
    assert not r.clean


def test_decryption_failed_is_never_decrypted_even_with_okay() -> None:
    r = parse_status(
        2, status("BEGIN_DECRYPTION", "DECRYPTION_OKAY", "DECRYPTION_FAILED", "END_DECRYPTION"), b""
    )
    assert r.encrypted and not r.decrypted


def test_badmdc_is_a_problem() -> None:
    r = parse_status(
        2,
        status(
            "BEGIN_DECRYPTION", "PLAINTEXT 62 0", "BADMDC", "DECRYPTION_FAILED", "END_DECRYPTION"
        ),
        b"",
    )
    assert r.problems == ("BADMDC", "DECRYPTION_FAILED")


def test_no_seckey() -> None:
    r = parse_status(
        2,
        status(
            "ENC_TO AAAA 18 0",
            "NO_SECKEY AAAA",
            "BEGIN_DECRYPTION",
            "DECRYPTION_FAILED",
            "END_DECRYPTION",
        ),
        b"",
    )
    assert r.no_secret_key and r.encrypted and not r.decrypted


def test_plaintext_packets_are_counted() -> None:
    r = parse_status(0, status("PLAINTEXT 62 0", "PLAINTEXT 62 0", "PLAINTEXT_LENGTH 3"), b"")
    assert r.plaintext_packets == 2


def test_two_decryption_layers_are_a_problem() -> None:
    r = parse_status(
        0,
        status(
            "BEGIN_DECRYPTION",
            "BEGIN_DECRYPTION",
            "PLAINTEXT 62 0",
            "DECRYPTION_OKAY",
            "END_DECRYPTION",
            "DECRYPTION_OKAY",
            "END_DECRYPTION",
        ),
        b"x",
    )
    assert r.problems == ("NESTED_ENCRYPTION 2",) and not r.clean


def test_returncode_alone_makes_it_unclean() -> None:
    assert not parse_status(2, "", b"").clean


def test_status_text_inside_a_log_line_is_ignored() -> None:
    fake = f"[GNUPG:] GOODSIG {KEYID} A [GNUPG:] {validsig()}"
    stderr = (
        f'gpg: Good signature from "{fake}"\n'
        f"gpg: {fake}\n"
        f" [GNUPG:] NEWSIG\n"  # leading space: not a status line either
        f"\t[GNUPG:] DECRYPTION_OKAY\n"
        "[GNUPG:]GOODSIG no-space\n"
        "[GNUPG:] PLAINTEXT 62 0\n"
    )
    r = parse_status(0, stderr, b"")
    assert r.signatures == ()
    assert not r.decrypted and r.plaintext_packets == 1


def test_output_limit_is_read_from_the_log() -> None:
    r = parse_status(2, "gpg: error writing to '-': exceeded --max-output limit\n", b"")
    assert r.output_limited
    assert not parse_status(0, status("PLAINTEXT 62 0"), b"").output_limited


# --- real GnuPG -----------------------------------------------------------------------


@pytest.fixture
def alice(tmp_path: Path) -> tuple[GnuPG, str]:
    gpg = GnuPG(tmp_path / "alice")
    return gpg, gpg.generate_key("Alice", "alice@alpha.example")


@pytest.fixture
def bob(tmp_path: Path, alice: tuple[GnuPG, str]) -> tuple[GnuPG, str]:
    """Bob knows Alice's public key; Alice knows Bob's."""
    gpg = GnuPG(tmp_path / "bob")
    fpr = gpg.generate_key("Bob", "bob@beta.example")
    a, a_fpr = alice
    gpg.import_keys(a.export_public(a_fpr).encode())
    a.import_keys(gpg.export_public(fpr).encode())
    return gpg, fpr


def test_options_are_strict(tmp_path: Path) -> None:
    args = GnuPG(tmp_path / "g", max_output=1234)._gpg.make_args(["--decrypt"], False)
    for option in (
        "--no-auto-key-retrieve",
        "--no-auto-key-import",
        "--batch",
        "--no-tty",
        "--disable-dirmngr",
    ):
        assert option in args
    assert args[args.index("--trust-model") + 1] == "always"
    assert args[args.index("--max-output") + 1] == "1234"
    assert args[args.index("--auto-key-locate") + 1] == "local"
    assert args[args.index("--homedir") + 1] == str(tmp_path / "g")
    assert (tmp_path / "g").stat().st_mode & 0o777 == 0o700


def test_gpg_runs_never_lock_a_random_seed_file(bob: tuple[GnuPG, str]) -> None:
    """No gpg of ours reads or writes the home's random_seed (a locked file: a gpg that
    finds it locked sleeps 250 ms), while a gpg run without the option writes one."""
    gpg, fpr = bob
    sealed = gpg.sign_encrypt(b"report\n", [fpr], fpr).encode()
    assert gpg.decrypt(sealed).clean
    assert not (gpg.home / "random_seed").exists()
    gpg_cli(gpg.home, "--trust-model", "always", "--encrypt", "--recipient", fpr, "--output",
            os.devnull, os.devnull)  # fmt: skip
    assert (gpg.home / "random_seed").exists()


def test_generate_gives_an_ed25519_signing_key_with_an_encryption_subkey(
    alice: tuple[GnuPG, str],
) -> None:
    gpg, fpr = alice
    assert len(fpr) == 40 and fpr == fpr.upper()
    details = gpg.details(fpr)
    assert details is not None
    assert details.user_ids == ("Alice <alice@alpha.example>",)
    assert "s" in details.capabilities and not details.revoked and details.expires is None
    assert [s.capabilities for s in details.subkeys] == ["e"]
    assert details.owns(details.subkeys[0].fingerprint) and details.owns(fpr.lower())
    assert details.key_for(fpr) is details
    assert gpg.details(fpr, secret=True) is not None


def test_generate_with_expiry(tmp_path: Path) -> None:
    gpg = GnuPG(tmp_path / "g")
    details = gpg.details(gpg.generate_key("E", "e@e.example", expire="1d"))
    assert details is not None and details.expires is not None
    assert timedelta(hours=23) < details.expires - datetime.now(UTC) <= timedelta(days=1)


def test_export_scan_and_secret_detection(alice: tuple[GnuPG, str], tmp_path: Path) -> None:
    gpg, fpr = alice
    public = gpg.export_public(fpr).encode()
    assert public.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    scanned = gpg.scan(public)
    assert [(k["type"], str(k["fingerprint"]).upper()) for k in scanned] == [("pub", fpr)]
    assert not gpg.contains_secret(public)
    secret = gpg_cli(gpg.home, "--armor", "--export-secret-keys", fpr)
    assert gpg.contains_secret(secret)
    assert GnuPG(tmp_path / "other").contains_secret(secret)  # scanning imports nothing


def test_scan_does_not_import(alice: tuple[GnuPG, str], tmp_path: Path) -> None:
    gpg, fpr = alice
    other = GnuPG(tmp_path / "other")
    other.scan(gpg.export_public(fpr).encode())
    assert other.details(fpr) is None


def test_import_returns_primary_fingerprints(alice: tuple[GnuPG, str], tmp_path: Path) -> None:
    gpg, fpr = alice
    other = GnuPG(tmp_path / "other")
    public = gpg.export_public(fpr).encode()
    assert other.import_keys(public) == [fpr]
    assert other.import_keys(public) == [fpr]  # unchanged on the second import: still named
    assert other.details(fpr, secret=True) is None


def test_export_of_an_unknown_key_raises(alice: tuple[GnuPG, str]) -> None:
    gpg, _ = alice
    with pytest.raises(GnuPGError):
        gpg.export_public("0" * 40)
    assert gpg.details("0" * 40) is None


def test_sign_encrypt_then_decrypt(alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]) -> None:
    (a, a_fpr), (b, b_fpr) = alice, bob
    armored = a.sign_encrypt(b"Report: type1\n", [b_fpr.lower()], a_fpr)
    assert armored.startswith("-----BEGIN PGP MESSAGE-----")
    r = b.decrypt(armored.encode())
    assert r.clean and r.decrypted and r.encrypted and not r.no_secret_key
    assert (r.data, r.plaintext_packets) == (b"Report: type1\n", 1)
    [sig] = r.signatures
    assert (sig.outcome, sig.signing_fingerprint, sig.primary_fingerprint) == ("good", a_fpr, a_fpr)
    assert sig.created is not None
    assert abs(sig.created - datetime.now(UTC)) < timedelta(minutes=1)


def test_the_named_signer_signs_when_the_home_holds_several_secret_keys(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    # A gateway home that adopted an old key (gateway-key import) beside its own holds two
    # secret keys; the reply must carry the signer's signature, not gpg's default key's.
    (a, first), (b, b_fpr) = alice, bob
    second = a.generate_key("Alice, new key", "alice-new@alpha.example")
    b.import_keys(a.export_public(second).encode())
    for signer in (second, first):
        [sig] = b.decrypt(a.sign_encrypt(b"x", [b_fpr], signer).encode()).signatures
        assert (sig.outcome, sig.primary_fingerprint) == ("good", signer)
        detached = a.sign_detached(b"y\r\n", signer).encode()
        [sig] = b.verify_detached(b"y\r\n", detached).signatures
        assert (sig.outcome, sig.primary_fingerprint) == ("good", signer)


def test_signing_with_a_key_the_home_lacks_fails_clearly(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    (a, _), (_, b_fpr) = alice, bob
    with pytest.raises(GnuPGError, match="sign\\+encrypt failed"):
        a.sign_encrypt(b"x", [b_fpr], b_fpr)  # Bob's public key only: no secret to sign
    with pytest.raises(GnuPGError, match="signing failed"):
        a.sign_detached(b"x", b_fpr)


def test_a_passphrase_with_a_line_break_is_refused(alice: tuple[GnuPG, str]) -> None:
    # It goes down gpg's stdin ahead of the data: a line break would smuggle in more.
    gpg, fpr = alice
    with pytest.raises(UsageError, match="line breaks"):
        gpg.sign_encrypt(b"x", [fpr], fpr, passphrase="secret\nmore")


def test_without_memory_files_gpg_runs_over_pipes(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where os.memfd_create is missing (not Linux), the same calls go over pipes; a
    # plaintext larger than a pipe's buffer must come through whole either way.
    (a, a_fpr), (b, b_fpr) = alice, bob
    plaintext = os.urandom(100_000).hex().encode()
    armored = a.sign_encrypt(plaintext, [b_fpr], a_fpr).encode()
    with_memfd = b.decrypt(armored)
    monkeypatch.delattr(os, "memfd_create")
    over_pipes = b.decrypt(armored)
    for r in (with_memfd, over_pipes):
        assert r.clean and r.data == plaintext
        assert [s.primary_fingerprint for s in r.signatures] == [a_fpr]
    assert b.decrypt(a.sign_encrypt(b"again", [b_fpr], a_fpr).encode()).data == b"again"


def test_max_parallel_caps_the_gpg_processes_running_at_once(
    alice: tuple[GnuPG, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpg, fpr = alice
    capped = GnuPG(gpg.home, max_parallel=2)  # [worker] concurrency = 2
    armored = capped.sign_encrypt(b"x", [fpr], fpr).encode()
    inside = most = 0
    lock, pairs = threading.Lock(), threading.Barrier(2, timeout=60)
    spawn = keys.gpg_process.spawn

    def counting(*args: Any) -> Any:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            pairs.wait()  # passes only while two run at once: the cap is not one
            return spawn(*args)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(keys.gpg_process, "spawn", counting)
    with ThreadPoolExecutor(6) as pool:  # six threads want gpg at once
        results = list(pool.map(lambda _: capped.decrypt(armored), range(6)))
    assert all(r.clean and r.data == b"x" for r in results)
    assert most == 2


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def test_a_lowered_priority_is_relative_and_capped(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"]) as child:
        try:
            base = _nice_of(child.pid)
            keys.gpg_process._lower_priority(child.pid, 5)
            assert _nice_of(child.pid) == min(19, base + 5)
            keys.gpg_process._lower_priority(child.pid, 30)
            assert _nice_of(child.pid) == 19
        finally:
            child.kill()
    keys.gpg_process._lower_priority(child.pid, 5)  # ended: left alone, no error


def test_gpg_runs_at_the_configured_lower_priority(
    alice: tuple[GnuPG, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpg, fpr = alice
    lowered: list[int] = []
    lower = keys.gpg_process._lower_priority

    def recording(pid: int, nice: int) -> None:
        lower(pid, nice)  # the gpg child is not waited for yet: its /proc entry stays
        lowered.append(_nice_of(pid) - os.getpriority(os.PRIO_PROCESS, 0))

    monkeypatch.setattr(keys.gpg_process, "_lower_priority", recording)
    niced = GnuPG(gpg.home, nice=7)
    assert niced.decrypt(niced.sign_encrypt(b"x", [fpr], fpr).encode()).data == b"x"
    assert lowered == [7, 7]  # sign+encrypt, then decrypt: each 7 below this thread


def test_an_input_over_a_mebibyte_goes_down_a_pipe_whole(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    (a, a_fpr), (b, b_fpr) = alice, bob
    plaintext = os.urandom(1_200_000)  # incompressible: the ciphertext is larger still
    armored = a.sign_encrypt(plaintext, [b_fpr], a_fpr).encode()
    assert len(armored) > keys.gpg_process._MEMORY_FILE_INPUT
    result = b.decrypt(armored)
    assert result.clean and result.data == plaintext
    assert [s.primary_fingerprint for s in result.signatures] == [a_fpr]


def test_gpg_giving_up_on_a_large_input_early_is_an_unclean_result(
    alice: tuple[GnuPG, str],
) -> None:
    gpg, _ = alice
    garbage = b"-----BEGIN PGP MESSAGE-----\n\n" + b"!" * 2_000_000  # gpg stops reading
    result = gpg.decrypt(garbage)
    assert not result.clean and not result.decrypted and result.data == b""


def test_signing_subkey_counts_for_its_primary(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    (a, a_fpr), (b, b_fpr) = alice, bob
    gpg_cli(a.home, "--quick-add-key", a_fpr, "ed25519", "sign")
    details = a.details(a_fpr)
    assert details is not None
    [sub] = [s for s in details.subkeys if s.capabilities == "s"]
    b.import_keys(a.export_public(a_fpr).encode())  # Bob learns the new subkey
    r = b.decrypt(a.sign_encrypt(b"x", [b_fpr], a_fpr).encode())
    [sig] = r.signatures
    assert r.clean and sig.outcome == "good"
    assert (sig.signing_fingerprint, sig.primary_fingerprint) == (sub.fingerprint, a_fpr)
    assert sig.keyid == sub.fingerprint[-16:]


def test_decrypt_without_the_secret_key(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str], tmp_path: Path
) -> None:
    (a, _), (_, b_fpr) = alice, bob
    stranger = GnuPG(tmp_path / "stranger")
    r = stranger.decrypt(a.encrypt(b"x", [b_fpr]).encode())
    assert r.encrypted and r.no_secret_key and not r.decrypted and not r.clean
    assert r.data == b""


def test_signature_by_an_unknown_key_is_errsig_9(bob: tuple[GnuPG, str], tmp_path: Path) -> None:
    b, b_fpr = bob
    stranger = GnuPG(tmp_path / "stranger")
    s_fpr = stranger.generate_key("S", "s@s.example")
    stranger.import_keys(b.export_public(b_fpr).encode())
    r = b.decrypt(stranger.sign_encrypt(b"x", [b_fpr], s_fpr).encode())
    [sig] = r.signatures
    assert (sig.outcome, sig.error_code, sig.keyid) == ("error", 9, s_fpr[-16:])
    assert r.decrypted and r.data == b"x"


def test_max_output_caps_a_compression_bomb(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    (a, a_fpr), (b, b_fpr) = alice, bob
    armored = a.sign_encrypt(b"A" * 200_000, [b_fpr], a_fpr)
    assert len(armored) < 5_000  # it compresses well: that is the point
    capped = GnuPG(b.home, max_output=10_000)
    r = capped.decrypt(armored.encode())
    assert r.output_limited and len(r.data) <= 10_000
    assert not b.decrypt(armored.encode()).output_limited


def test_detached_signature(alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]) -> None:
    (a, a_fpr), (b, _) = alice, bob
    signature = a.sign_detached(b"signed\r\n", a_fpr).encode()
    good = b.verify_detached(b"signed\r\n", signature)
    assert good.clean and [s.outcome for s in good.signatures] == ["good"]
    assert good.signatures[0].primary_fingerprint == a_fpr
    bad = b.verify_detached(b"signed\n", signature)
    assert [s.outcome for s in bad.signatures] == ["bad"] and not bad.clean


def test_clearsigned_text_is_returned(alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]) -> None:
    (a, a_fpr), (b, _) = alice, bob
    block = gpg_cli(
        a.home,
        "--local-user",
        a_fpr,
        "--clearsign",
        "--output",
        "-",
        str(_write(a.home / "in.txt", b"Report: type1\n-dash\n")),
    )
    r = b.verify_clearsigned(block)
    assert r.clean and r.data == b"Report: type1\n-dash\n"
    assert [(s.outcome, s.primary_fingerprint) for s in r.signatures] == [("good", a_fpr)]
    tampered = b.verify_clearsigned(block.replace(b"type1", b"type2"))
    assert [s.outcome for s in tampered.signatures] == ["bad"]


def test_ciphertext_posing_as_a_clearsign_signature_is_not_decrypted(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    (a, a_fpr), (b, b_fpr) = alice, bob
    ciphertext = a.sign_encrypt(b"someone else's secret", [b_fpr], a_fpr)
    body = ciphertext.split("\n\n", 1)[1].replace("PGP MESSAGE", "PGP SIGNATURE")
    block = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nhello\n"
        "-----BEGIN PGP SIGNATURE-----\n\n" + body
    ).encode()
    r = b.verify_clearsigned(block)
    assert not r.encrypted and not r.decrypted and not r.clean
    assert r.signatures == () and b"secret" not in r.data


def test_nested_encryption_layers_are_refused(
    alice: tuple[GnuPG, str], bob: tuple[GnuPG, str]
) -> None:
    """`--no-literal` puts the inner message's packets, not a literal, in the outer layer."""
    (a, _), (b, b_fpr) = alice, bob
    inner = gpg_cli(
        a.home,
        "--trust-model",
        "always",
        "--encrypt",
        "--recipient",
        b_fpr,
        "--output",
        "-",
        str(_write(a.home / "in.txt", b"inner")),
    )
    outer = gpg_cli(
        a.home,
        "--trust-model",
        "always",
        "--no-literal",
        "--compress-algo",
        "none",
        "--encrypt",
        "--armor",
        "--recipient",
        b_fpr,
        "--output",
        "-",
        str(_write(a.home / "inner.gpg", inner)),
    )
    r = b.decrypt(outer)
    assert "NESTED_ENCRYPTION 2" in r.problems and not r.clean


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("recipient", ["alice@example.org", "0x1234ABCD", "ABCDEF", ""])
def test_recipients_must_be_full_fingerprints(tmp_path: Path, recipient: str) -> None:
    gpg = GnuPG(tmp_path / "g")
    fpr = gpg.generate_key("Someone", "alice@example.org")
    with pytest.raises(ValueError, match="full fingerprints"):
        gpg.sign_encrypt(b"x", [recipient], fpr)
    with pytest.raises(ValueError, match="full fingerprints"):
        gpg.encrypt(b"x", [recipient])


def test_non_utf8_bytes_echoed_by_gpg_do_not_kill_the_status_reader(tmp_path: Path) -> None:
    # gpg echoes a broken armor header byte for byte; invalid UTF-8 there once killed
    # python-gnupg's stderr reader thread, and the result lost its status lines (found
    # by tests/security/test_fuzz.py).
    gpg = GnuPG(tmp_path / "g")
    fpr = gpg.generate_key("Someone", "s@example.org")
    begin, blank, first, *rest = gpg.sign_encrypt(b"payload", [fpr], fpr).encode().split(b"\n")
    assert blank == b""
    broken = b"\n".join([begin, b"\xe1" + first, b"", *rest])
    result = gpg.decrypt(broken)
    # Every status line was read (the decryption is seen), and so is gpg's complaint.
    assert result.decrypted and result.returncode != 0 and not result.clean


def test_utf8_user_ids_are_read_back_intact(tmp_path: Path) -> None:
    gpg = GnuPG(tmp_path / "g")
    fpr = gpg.generate_key("CERT Ünïcødé", "u@example.org")
    details = gpg.details(fpr)
    assert details is not None and details.user_ids == ("CERT Ünïcødé <u@example.org>",)


def test_details_follow_the_keyring_when_another_process_changes_it(tmp_path: Path) -> None:
    source = GnuPG(tmp_path / "source")
    fpr = source.generate_key("CERT X", "cert@x.example")
    gateway, admin = GnuPG(tmp_path / "gateway"), GnuPG(tmp_path / "gateway")  # two processes
    assert gateway.details(fpr) is None

    admin.import_keys(source.export_public(fpr).encode())
    imported = gateway.details(fpr)
    assert imported is not None and imported.user_ids == ("CERT X <cert@x.example>",)
    assert gateway.details(fpr) == imported  # asked again: the same, without a gpg run

    admin.delete_public(fpr)
    assert gateway.details(fpr) is None
