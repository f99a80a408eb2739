"""What the gateway's processes use while the bench runs: CPU, memory, the machine.

In: process ids (`serve`, its SMTP door, gpg-agent, PostgreSQL's server processes), read
from /proc. Out: CPU seconds of a process and of its reaped children (gpg), peak RSS,
sampled PSS with the memory files gpg reads and writes, how busy the whole machine was.
Used by bench/throughput.py; Linux only.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def peak_rss(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) of `serve` and of its SMTP door process, which holds each DATA."""
    doors = [child for child in children(pid) if "python" in process_name(child)]
    return peak_rss_mib(pid), sum(peak_rss_mib(child) for child in doors)


class PssSampler:
    """The peak of the processes' summed PSS, sampled every 20 ms while in use.

    Peak RSS overcounts two processes: the pages they share (the interpreter, libraries)
    are in both. PSS divides each shared page among its sharers, so the sum is what the
    processes together hold. The kernel keeps no peak PSS; a sample may miss a peak
    shorter than 20 ms.

    gpg's input and output are memory files (memfd) that serve writes and reads without
    mapping them: their pages are in no process's PSS, so their sizes are added (each
    file once; gpg's stdin, stdout and stderr are the same files).
    """

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids, self.peak = list(pids), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            held = sum(pss_mib(pid) for pid in self.pids) + memory_files_mib(self.pids)
            self.peak = max(self.peak, held)


def memory_files_mib(pids: Sequence[int]) -> float:
    """The size of the memfd files that the processes hold open, each counted once."""
    sizes: dict[tuple[int, int], int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
        for fd in fds:
            try:
                if os.readlink(fd).startswith("/memfd:"):
                    st = fd.stat()
                    sizes[(st.st_dev, st.st_ino)] = st.st_size
            except OSError:  # closed meanwhile
                continue
    return sum(sizes.values()) / 2**20


def pss_mib(pid: int) -> float:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    return int(match[1]) / 1024 if match else 0.0


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) / 1024 if match else float("nan")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a process itself and of its waited-for children (gpg), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


@dataclass
class Machine:
    """CPU that neither side's own figures hold: the whole machine, gpg-agent, the bench.

    gpg-agent does every secret-key operation for both the gateway and the floor, as a
    daemon of the gateway's GnuPG home: no process's child, so no figure above counts it.
    """

    home: Path
    busy_jiffies: int = 0  # all cores' time not idle, and all of it, while measuring
    all_jiffies: int = 0
    agent: float = 0.0  # seconds of gpg-agent CPU
    bench: float = 0.0  # seconds of this process's CPU (the SMTP senders, the polling)
    postgres: float = 0.0  # seconds of the PostgreSQL server's CPU (all its processes)

    @property
    def busy(self) -> float:
        return self.busy_jiffies / self.all_jiffies if self.all_jiffies else 0.0

    @contextmanager
    def measuring(self) -> Iterator[Machine]:
        """Add what happens in the block to the figures (each round adds its own)."""
        machine, agent, bench = machine_jiffies(), agent_seconds(self.home), own_seconds()
        postgres = postgres_seconds()
        yield self
        busy, total = (b - a for a, b in zip(machine, machine_jiffies(), strict=True))
        self.busy_jiffies += busy
        self.all_jiffies += total
        self.agent += agent_seconds(self.home) - agent
        self.bench += own_seconds() - bench
        self.postgres += postgres_seconds() - postgres


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def agent_seconds(home: Path) -> float:
    """CPU seconds of the gpg-agent serving `home` (0 if none runs yet)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and str(home).encode() in argv:
            return sum(cpu_seconds(int(proc.name)))
    return 0.0


def postgres_seconds() -> float:
    """CPU seconds of the PostgreSQL server: its processes, and those it has reaped.

    Each process's own time and its waited-for children's: a backend that ended is in
    the postmaster's children time, a running one in its own.
    """
    total = 0.0
    for pid in pids_named("postgres"):
        try:
            total += sum(cpu_seconds(pid))
        except FileNotFoundError:  # ended between the listing and the reading
            continue
    return total


def pids_named(name: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if process_name(int(p.name)) == name]


def own_seconds() -> float:
    times = os.times()
    return times.user + times.system
