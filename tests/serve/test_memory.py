"""serve's native memory (issue #22): free memory kept by glibc between live blocks goes back to the
system on trim(); the trimmer trims at most once a period."""

import sys
import threading
from pathlib import Path

import pytest

from avgn_edge.serve.memory import Trimmer, trim

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trim_gives_back_free_memory_kept_between_live_blocks():
    kept, done = [], threading.Event()

    def churn():                                 # a worker thread, as serve's: its own arena
        blocks = [bytearray(b"x" * 65536) for _ in range(2000)]       # 125 MB, below the mmap threshold
        kept.extend(blocks[::2])                 # every other block stays alive: the freed ones cannot merge
        del blocks
        done.set()

    threading.Thread(target=churn).start()
    done.wait(60)
    before = rss_mb()
    assert trim()
    after = rss_mb()
    assert before - after > 30, (before, after)  # about 62 MB were free between the live blocks
    assert len(kept) == 1000


def test_trimmer_trims_once_a_period():
    now = [0.0]
    t = Trimmer(60.0, clock=lambda: now[0])
    assert not t.tick()
    now[0] = 59.0
    assert not t.tick()
    now[0] = 61.0
    assert t.tick() and not t.tick()
