"""Running one gpg process: bytes in, exit status, stderr and stdout out, in memory.

The GnuPG facade (`keys/gpg.py`) builds the command line; this module only starts the
process, feeds it, waits for it and reads back what it wrote, without pipes where it
can (see `spawn`), at a lower CPU priority when asked, and never for longer than its
time limit: gpg runs in a process group of its own, killed whole when the limit passes
or when a check of its output says so (`keys/gpg_watchdog.py`; `Finished.stopped`).
One 10 MB message of random key packets kept gpg busy for minutes before there was a
limit. The processes python-gnupg starts for key management get the same limit
(`TimedGPG`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import IO, Any, NamedTuple

import gnupg

from contract.errors import GnuPGError
from keys.gpg_watchdog import TIMEOUT, WATCHDOG, Watched, kill_group


class Finished(NamedTuple):
    """One finished process: its exit status, stderr (latin-1: every byte maps) and stdout."""

    returncode: int
    stderr: str
    stdout: bytes
    stopped: str | None = None  # killed: gpg_watchdog's TIMEOUT or the check's reason


# Larger input goes down a pipe: in a memory file it would be a second copy of a 10 MiB
# message for as long as gpg reads it, where a pipe holds 64 KiB at a time.
_MEMORY_FILE_INPUT = 2**20


def spawn(
    argv: list[str],
    data: bytes,
    env: dict[str, str] | None,
    nice: int = 0,
    timeout: float | None = None,
    stop_when: Callable[[bytes], str | None] | None = None,
) -> Finished:
    """Run `argv` with `data` on stdin, its stdout and stderr in memory-only files.

    gpg reads and writes anonymous files (memfd: RAM, never a disk) instead of pipes,
    so the calling thread writes once, sleeps in `waitpid` without the interpreter
    lock, and reads once: with pipes it woke about eleven times a call to move data,
    taking the lock each time (0.30 -> 0.16 ms of Python a call, measured over 300
    decryptions). Output read back in one piece also leaves no trail of 32 KiB chunks
    in the thread's heap: collected from a pipe, a 6 MiB decryption kept serve's memory
    about 20 MiB higher (bench/throughput.py --large 4). Input over
    `_MEMORY_FILE_INPUT` goes down a pipe, written whole; nothing else is a pipe, so
    that cannot deadlock. Where there are no memory files (not Linux), all are pipes.
    After `timeout` seconds (feeding included), or once `stop_when` finds in what gpg
    wrote to stderr so far that it must stop, the process group is killed.
    """
    # S603: `argv` comes from `make_args` and fixed options, never from a message.
    if not hasattr(os, "memfd_create"):
        return _spawn_with_pipes(argv, data, env, nice, timeout)
    fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("gpg-out", "gpg-err")]
    try:
        stdin = _memory_file(data) if len(data) <= _MEMORY_FILE_INPUT else None
        fds += [stdin] if stdin is not None else []
        source = subprocess.PIPE if stdin is None else stdin
        check = None if stop_when is None else (lambda: stop_when(_read_all(fds[1])))
        with subprocess.Popen(  # noqa: S603
            argv, stdin=source, stdout=fds[0], stderr=fds[1], env=env, process_group=0
        ) as proc:
            watched = WATCHDOG.watch(proc.pid, timeout, check)
            try:
                _lower_priority(proc.pid, nice)
                if proc.stdin is not None:
                    _feed(proc.stdin, data)  # killed by the watchdog, gpg lets it go
                # Ended, not yet reaped: the watchdog can never kill a reused group id.
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            finally:
                WATCHDOG.done(watched)
        # latin-1 maps every byte: gpg echoes attacker-chosen bytes into its log lines.
        stderr = _read_all(fds[1]).decode("latin-1")
        return Finished(proc.returncode, stderr, _read_all(fds[0]), watched.outcome)
    finally:
        for fd in fds:
            os.close(fd)


def _spawn_with_pipes(
    argv: list[str], data: bytes, env: dict[str, str] | None, nice: int, timeout: float | None
) -> Finished:
    pipe = subprocess.PIPE
    with subprocess.Popen(  # noqa: S603
        argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env, process_group=0
    ) as proc:
        _lower_priority(proc.pid, nice)
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            out, err = proc.communicate()
            return Finished(proc.returncode, err.decode("latin-1"), out, TIMEOUT)
    return Finished(proc.returncode, err.decode("latin-1"), out)


def _memory_file(data: bytes) -> int:
    fd = os.memfd_create("gpg-in", os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """All of `data` down gpg's stdin, then end it; gpg may stop reading early (bad input,
    or killed by the watchdog while it was busy and not reading)."""
    try:
        stdin.write(data)
    except BrokenPipeError:
        pass
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _lower_priority(pid: int, nice: int) -> None:
    """Run process `pid` `nice` steps below its current CPU priority (at most 19).

    gpg is the gateway's bulk work; the SMTP door (and, on PostgreSQL, the server's
    processes) answers senders who wait. On a busy machine gpg at the same priority
    took their CPU: PostgreSQL's p99 SMTP accept was 126-139 ms with gpg at nice 0 and
    58-81 ms at nice 10, for the same throughput (bench/README.md). Set just after the
    start, so gpg's first moments run at the caller's priority; raising a priority
    needs no privilege, and a process that already ended is left alone.
    """
    if nice <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, current + nice))
    except OSError:  # ended already, or not ours to change: it simply runs as it is
        return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    """Everything written to the memory file `fd`, from its start."""
    size = os.lseek(fd, 0, os.SEEK_END)
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class TimedGPG(gnupg.GPG):  # type: ignore[misc]  # python-gnupg ships no types
    """python-gnupg, with each gpg process it starts in a group of its own, killed after
    `timeout` seconds (`keys/gpg_watchdog.py`); the call then raises `GnuPGError` instead
    of returning a result.

    python-gnupg has no time limit of its own: it starts the process in
    `_open_subprocess` and waits for it in `_collect_output`, for every call (the ones
    keys/gpg.py makes: key listings, imports, exports, generation, deletion), so both
    are extended here (tests/keys/test_gpg_timeout.py holds them to that).
    """

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout  # before python-gnupg's own first gpg process (its version)
        self._watched: dict[int, Watched] = {}
        super().__init__(**kwargs)

    def _open_subprocess(self, args: Any, passphrase: bool = False) -> subprocess.Popen[bytes]:
        cmd = self.make_args(args, passphrase)
        pipe = subprocess.PIPE
        proc = subprocess.Popen(  # noqa: S603 - make_args: fixed options, never a message
            cmd, stdin=pipe, stdout=pipe, stderr=pipe, env=self.env, process_group=0
        )
        self._watched[proc.pid] = WATCHDOG.watch(proc.pid, self.timeout)
        return proc

    def _collect_output(
        self, process: subprocess.Popen[bytes], result: Any, writer: Any = None, stdin: Any = None
    ) -> int:
        try:
            return int(super()._collect_output(process, result, writer, stdin))
        finally:
            watched = self._watched.pop(process.pid, None)
            if watched is not None:
                WATCHDOG.done(watched)
                if watched.outcome is not None:
                    raise GnuPGError(
                        f"gpg did not finish within {self.timeout:g} s and was stopped"
                    )
