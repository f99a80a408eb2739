"""The C allocator's settings for `serve`, the process that holds 10 MiB messages in threads.

glibc's malloc serves a block above its mmap threshold (128 KiB at start) with mmap and
unmaps it when it is freed. But freeing such a block also raises the threshold to that
block's size (up to 32 MiB), so after the first large message, buffers of several MiB
come from the arenas' heaps instead, one arena per thread, where memory freed in the
middle stays with the process. Measured with four 10 MiB messages, two at a time: serve
peaked about 120 MiB above what it ever held at once. A fixed threshold turns the
adjustment off, and large buffers go back to the system as soon as they are freed.

Set by the process itself: `MALLOC_MMAP_THRESHOLD_` in a unit file does the same, but
only where someone remembers to put it.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 131_072  # glibc's own starting value, kept


def keep_large_blocks_mapped(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold`; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this interpreter already runs on
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
