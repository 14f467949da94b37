"""Live statistics in bounded memory: counters, percentiles over the recent past, a latency histogram.

Percentiles (p50/p95 of end-to-end latency, per-stage time, A/V pairing) are over the last
``RECENT`` values, in rings allocated up front: a process that runs for months keeps the same
few kilobytes from its first minute on. The
decision-latency histogram has fixed buckets and counts every decision ever made (what
Prometheus wants).
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict, deque

import numpy as np

RECENT = 1024
# seconds; around the 250 ms real-time budget
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5)


class Histogram:
    """Cumulative-free bucket counts with fixed upper bounds (+Inf last), and the sum."""

    def __init__(self, bounds=LATENCY_BUCKETS):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float):
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """[(upper bound as text, cumulative count)], ending with ("+Inf", count)."""
        out, total = [], 0
        for bound, n in zip(list(self.bounds) + [float("inf")], self.counts):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class Recent:
    """The last ``size`` floats in a preallocated ring: its memory is all there from the start."""

    def __init__(self, size: int = RECENT):
        self._buf = np.zeros(size)
        self._n = 0

    def append(self, value: float):
        self._buf[self._n % len(self._buf)] = value
        self._n += 1

    def values(self) -> np.ndarray:
        """Oldest first."""
        if self._n <= len(self._buf):
            return self._buf[:self._n].copy()
        return np.roll(self._buf, -(self._n % len(self._buf)))

    def __len__(self) -> int:
        return min(self._n, len(self._buf))

    def __iter__(self):
        return iter(self.values().tolist())


class LiveStats:
    def __init__(self):
        self.start = time.monotonic()
        self.stage_ms: dict[str, Recent] = defaultdict(Recent)
        self.latency_ms = Recent()               # snippet time -> result ready
        self.pairing_ms = Recent()               # |audio window end - frame time|
        self.latency = Histogram()
        self.snippets = 0
        self.decisions = 0
        self.dropped = 0                         # snippets discarded because inference was behind
        self.late = 0                            # clock ticks lost because the clock thread ran late
        self.stale = 0                           # clock ticks with no new frame
        self.audio_gaps = 0
        self.failed_calls = 0                    # backend calls that failed (a remote server down): skipped
        self._rate = deque(maxlen=64)            # (time, snippets) for the recent snippet rate

    def snippet(self, pairing_ms: float, audio_ok: bool):
        self.snippets += 1
        self.pairing_ms.append(pairing_ms)
        self.audio_gaps += not audio_ok
        self._rate.append((time.monotonic(), self.snippets))

    def decision(self, timings: dict[str, float], latency_ms: float):
        self.decisions += 1
        self.latency_ms.append(latency_ms)
        self.latency.observe(latency_ms / 1e3)
        for k, v in timings.items():
            self.stage_ms[k].append(v)

    @staticmethod
    def _pct(recent, q):
        return float(np.percentile(recent.values(), q)) if len(recent) else None

    def recent_rate(self, horizon: float = 10.0) -> float:
        """Snippets per second over about the last ``horizon`` seconds (0 when none came)."""
        now = time.monotonic()
        # a snapshot first: the stream thread appends while an HTTP thread reads (/metrics, /api/streams)
        pts = [p for p in tuple(self._rate) if now - p[0] <= horizon]
        if len(pts) < 2:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / max(now - pts[0][0], 1e-9)

    def summary(self, extra: dict | None = None) -> dict:
        elapsed = time.monotonic() - self.start
        out = {"seconds": round(elapsed, 2), "snippets": self.snippets, "decisions": self.decisions,
               "snippets_per_s": round(self.snippets / elapsed, 3) if elapsed > 0 else 0.0,
               "dropped": self.dropped, "late_ticks": self.late, "stale_ticks": self.stale,
               "audio_gaps": self.audio_gaps, "failed_calls": self.failed_calls,
               "latency_p50_ms": self._pct(self.latency_ms, 50), "latency_p95_ms": self._pct(self.latency_ms, 95),
               "av_pairing_p95_ms": self._pct(self.pairing_ms, 95),
               "stages_ms": {k: {"p50": self._pct(v, 50), "p95": self._pct(v, 95)} for k, v in list(self.stage_ms.items())}}
        return {**out, **(extra or {})}

    def line(self) -> str:
        s = self.summary()
        p95 = s["latency_p95_ms"]
        failed = f", failed backend calls {self.failed_calls}" if self.failed_calls else ""
        return (f"{s['snippets_per_s']:.2f} snippets/s, {s['decisions']} decisions, latency p95 "
                f"{p95:.0f} ms, dropped {s['dropped']}, audio gaps {s['audio_gaps']}{failed}" if p95 is not None
                else f"{s['snippets']} snippets, waiting for a full window{failed}")
