"""How fast the data pipeline delivers clips: decoding the files vs reading the snippet cache.

Both are measured the way training reads (DataLoader workers, batches of clips), one after
the other, on the same clips; the cache is filled first (that pass is timed too).
"""

from __future__ import annotations

import time

from ..data.cache import fill
from ..data.split import Subset
from .batches import loader


def clips_per_second(dataset, batch_size: int = 16, workers: int = 1) -> float:
    t0, n = time.perf_counter(), 0
    for batch in loader(dataset, batch_size, shuffle=False, workers=workers):
        n += len(batch["label"])
    return n / (time.perf_counter() - t0)


def measure(plain, cached, clips: int | None = None, batch_size: int = 16, workers: int = 1,
            progress: bool = True) -> dict:
    """``plain`` and ``cached``: the same items without and with a cache."""
    report = fill(cached, workers=workers, progress=progress)
    n = min(clips or len(plain), len(plain))
    files = clips_per_second(Subset(plain, range(n)), batch_size, workers)
    cache = clips_per_second(Subset(cached, range(n)), batch_size, workers)
    return {"clips": n, "workers": workers, "batch_size": batch_size, "files_clips_per_s": round(files, 1),
            "cache_clips_per_s": round(cache, 1), "speedup": round(cache / files, 1), "fill": report,
            "cache_dir": str(cached.cache.dir), "cache_gib": round(cached.cache.nbytes / 2**30, 3)}
