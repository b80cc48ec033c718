"""Keep freed memory for reuse instead of handing every large buffer back to the kernel.

glibc serves each allocation above its mmap threshold (at most 32 MB, adjusted on the fly) with a
fresh mmap and unmaps it on free, so every sliding-window batch re-faults its activations page by
page. On a 1024x1024 bright-field image (three networks, --tta none, this 2-core CPU) that was
28-32 s of system time in a 41 s run, 1.25 billion page faults for a 4096x4096 one. Raising the
mmap and trim thresholds to 1 GiB keeps those pages mapped between batches: the same run took
23-28 s, system time 1-7 s, peak RSS unchanged (1.7-1.8 GB), same outputs (benchmarks/bench_allocator.py).
The container also sets MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ in its environment, which
covers the allocations made before this is called.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
THRESHOLD_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # glibc's mallopt parameter numbers


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds; False (and nothing changed) on a C library without mallopt,
    or when LMC_MALLOC_DEFAULTS=1 asks for the allocator's defaults (benchmarks/bench_allocator.py)."""
    if os.environ.get("LMC_MALLOC_DEFAULTS") == "1":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):     # not glibc (musl, macOS): their allocators behave differently
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1
    if not ok:
        log.debug("mallopt refused the thresholds; large buffers are re-mapped per batch")
    return ok
