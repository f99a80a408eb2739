"""Running one gpg process: bytes in, exit status, stderr and stdout out, in memory.

The GnuPG facade (`keys/gpg.py`) builds the command line; this module only starts the
process, feeds it, waits for it and reads back what it wrote, without pipes where it
can (see `spawn`), at a lower CPU priority when asked.
"""

from __future__ import annotations

import os
import subprocess
from typing import IO, NamedTuple


class Finished(NamedTuple):
    """One finished process: its exit status, stderr (latin-1: every byte maps) and stdout."""

    returncode: int
    stderr: str
    stdout: bytes


# Larger input goes down a pipe: in a memory file it would be a second copy of a 10 MiB
# message for as long as gpg reads it, where a pipe holds 64 KiB at a time.
_MEMORY_FILE_INPUT = 2**20


def spawn(argv: list[str], data: bytes, env: dict[str, str] | None, nice: int = 0) -> Finished:
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
    """
    # S603: `argv` comes from `make_args` and fixed options, never from a message.
    if not hasattr(os, "memfd_create"):
        pipe = subprocess.PIPE
        with subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env) as proc:  # noqa: S603
            _lower_priority(proc.pid, nice)
            out, err = proc.communicate(data)
        return Finished(proc.returncode, err.decode("latin-1"), out)
    fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("gpg-out", "gpg-err")]
    try:
        stdin = _memory_file(data) if len(data) <= _MEMORY_FILE_INPUT else None
        fds += [stdin] if stdin is not None else []
        source = subprocess.PIPE if stdin is None else stdin
        with subprocess.Popen(argv, stdin=source, stdout=fds[0], stderr=fds[1], env=env) as proc:  # noqa: S603
            _lower_priority(proc.pid, nice)
            if proc.stdin is not None:
                _feed(proc.stdin, data)
            returncode = proc.wait()
        # latin-1 maps every byte: gpg echoes attacker-chosen bytes into its log lines.
        return Finished(returncode, _read_all(fds[1]).decode("latin-1"), _read_all(fds[0]))
    finally:
        for fd in fds:
            os.close(fd)


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
    """All of `data` down gpg's stdin, then end it; gpg may stop reading early (bad input)."""
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
