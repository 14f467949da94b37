"""Native memory of a service that runs for months (glibc; elsewhere these do nothing).

The #22 soak (tests/soak_serve.py, tracemalloc and glibc's mallinfo2 inside serve) found serve's RSS
growth to be neither Python objects (the traced heap stayed at about 60 MB) nor native memory in use
(flat at about 140 MB) but free memory that glibc keeps: frames, audio windows, tensors and encoder
buffers are freed by many threads into per-thread arenas, where free chunks between live ones are
never given back (146 MB kept free after 2.5 minutes, 168 MB after 5.5, still rising). So serve
limits the arenas before its threads start and hands free pages back to the system every 30 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time

log = logging.getLogger("avgn_edge.serve.memory")

M_ARENA_MAX = -8                 # mallopt parameter (malloc.h)
ARENAS = 2
TRIM_EVERY = 30.0


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def limit_arenas(n: int = ARENAS) -> bool:
    """At most ``n`` malloc arenas for threads started from now on (call before they start)."""
    libc = _libc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, n))


def trim() -> bool:
    """Give the free pages of every arena back to the system (malloc_trim(0)); True if any went."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


class Trimmer:
    """``tick()`` from a loop: ``trim()`` at most once every ``every`` seconds."""

    def __init__(self, every: float = TRIM_EVERY, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.last = clock()

    def tick(self) -> bool:
        if self.clock() - self.last < self.every:
            return False
        self.last = self.clock()
        trim()
        return True
