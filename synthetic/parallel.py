"""Independent per-plane work on a thread per core.

NumPy's ufuncs and scipy.fft release the GIL on large arrays, so threads give the simulator a
real speed-up without copying images between processes. Work that draws random numbers gets its
own child generator per item (Generator.spawn, in the items' order) from the caller, never a
shared one, so a seed gives the same images on any number of cores.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(x) for x in items], on min(len(items), cores) threads; results in the items' order."""
    items = list(items)
    threads = max(1, min(len(items), os.cpu_count() or 1))
    if threads == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


def for_each_band(fn: Callable[[slice], None], height: int, rows: int = 64) -> None:
    """fn(band) for the row bands (slices of `rows` rows) that cover `height` rows.

    For pixel-wise formulas with many temporaries: computed band by band, the temporaries stay in
    the cache instead of making a pass over main memory each (about twice as fast on a 1024²
    image), and the bands run on a thread per core. `fn` writes its band of preallocated outputs;
    bands do not overlap, so the result does not depend on the order or the thread count.
    """
    thread_map(fn, [slice(top, min(top + rows, height)) for top in range(0, height, rows)])
