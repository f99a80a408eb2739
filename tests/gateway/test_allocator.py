"""gateway/allocator.py: glibc's mmap threshold fixed, so freed large buffers leave at once.

Run in a child process: the setting lasts for the life of the process that makes it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import allocator

ROOT = Path(__file__).resolve().parents[2]

# Frees 10 MiB blocks in threads, as serve's workers do; prints the RSS left over in MiB.
FREED_IN_THREADS = """
import sys, threading
from gateway.allocator import keep_large_blocks_mapped
if sys.argv[1] == "fixed":
    assert keep_large_blocks_mapped()
def work():
    for size in (12, 10, 8, 6, 4) * 3:
        held = [bytes(size << 20), bytes(size << 19)]
        del held
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
status = open("/proc/self/status").read()
print(int(status.split("VmRSS:")[1].split()[0]) // 1024)
"""


def rss_left(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FREED_IN_THREADS, mode],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_with_the_threshold_fixed_freed_blocks_do_not_stay_with_the_process() -> None:
    # glibc's default raises the threshold after the first free, and the next blocks of
    # 10 MiB stay in the threads' heaps when freed.
    assert rss_left("fixed") < rss_left("default") - 20


def test_elsewhere_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.keep_large_blocks_mapped() is False
