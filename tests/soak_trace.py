"""Runs `avgn-edge serve` under tracemalloc for tests/soak_serve.py --trace (not a pytest test).

    python tests/soak_trace.py OUT_DIR EVERY_S serve CONFIG

Every EVERY_S seconds it appends to OUT_DIR/trace.txt: RSS, the Python heap that tracemalloc sees, glibc's
malloc counters (mallinfo2: bytes in use vs. free but kept), the object counts by type that grew most, and
the 25 source lines whose allocations grew most since the first dump (the warm-up baseline). RSS growth
that the Python heap does not account for is native (allocator arenas, ONNX Runtime, FFmpeg, OpenCV).
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo() -> dict:
    try:
        f = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    f.restype = _Mallinfo2
    m = f()
    mb = 1 << 20
    return {"arena_mb": round(m.arena / mb, 1), "mmap_mb": round(m.hblkhd / mb, 1),
            "in_use_mb": round(m.uordblks / mb, 1), "free_kept_mb": round(m.fordblks / mb, 1)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def types() -> collections.Counter:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def dumper(out: Path, every: float) -> None:
    base, base_types, t0 = None, None, time.monotonic()
    while True:
        time.sleep(every)
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        cur, peak = tracemalloc.get_traced_memory()
        ty = types()
        lines = [f"== t={time.monotonic() - t0:.0f}s rss={rss_mb():.1f}MB python_heap={cur / 2**20:.1f}MB "
                 f"peak={peak / 2**20:.1f}MB malloc={mallinfo()} threads={threading.active_count()}"]
        if base is None:
            base, base_types = snap, ty
        else:
            grew = sorted(((ty[k] - base_types.get(k, 0), k) for k in ty), reverse=True)[:15]
            lines.append("types grown: " + ", ".join(f"{k}+{n}" for n, k in grew if n > 0))
            for st in snap.compare_to(base, "traceback")[:25]:
                if st.size_diff <= 0:
                    continue
                lines.append(f"  {st.size_diff / 1024:+.0f} KiB {st.count_diff:+d} blocks")
                lines.extend(f"      {fr.filename}:{fr.lineno}" for fr in st.traceback[-4:])
        with (out / "trace.txt").open("a") as f:
            f.write("\n".join(lines) + "\n")


def trimmer(every: float) -> None:
    """SOAK_TRIM=seconds: malloc_trim(0) that often (an experiment: is the growth memory glibc keeps?)."""
    trim = ctypes.CDLL("libc.so.6").malloc_trim
    while True:
        time.sleep(every)
        trim(0)


def main() -> None:
    out, every = Path(sys.argv[1]), float(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if every > 0:                                    # 0: no tracemalloc (only SOAK_TRIM)
        tracemalloc.start(6)
        threading.Thread(target=dumper, args=(out, every), daemon=True).start()
    if os.environ.get("SOAK_TRIM"):
        threading.Thread(target=trimmer, args=(float(os.environ["SOAK_TRIM"]),), daemon=True).start()
    sys.argv = ["avgn-edge"] + sys.argv[3:]
    runpy.run_module("avgn_edge.cli.main", run_name="__main__")


if __name__ == "__main__":
    main()
