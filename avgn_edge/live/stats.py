"""Live statistics: per-stage and end-to-end latency (p50/p95), snippets/s, drops, A/V pairing."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np


class LiveStats:
    def __init__(self):
        self.start = time.monotonic()
        self.stage_ms: dict[str, list[float]] = defaultdict(list)
        self.latency_ms: list[float] = []        # snippet time -> result ready
        self.pairing_ms: list[float] = []        # |audio window end - frame time|
        self.snippets = 0
        self.decisions = 0
        self.dropped = 0                         # snippets discarded because inference was behind
        self.stale = 0                           # clock ticks with no new frame
        self.audio_gaps = 0

    def snippet(self, pairing_ms: float, audio_ok: bool):
        self.snippets += 1
        self.pairing_ms.append(pairing_ms)
        self.audio_gaps += not audio_ok

    def decision(self, timings: dict[str, float], latency_ms: float):
        self.decisions += 1
        self.latency_ms.append(latency_ms)
        for k, v in timings.items():
            self.stage_ms[k].append(v)

    @staticmethod
    def _pct(values, q):
        return float(np.percentile(values, q)) if values else None

    def summary(self, extra: dict | None = None) -> dict:
        elapsed = time.monotonic() - self.start
        out = {"seconds": round(elapsed, 2), "snippets": self.snippets, "decisions": self.decisions,
               "snippets_per_s": round(self.snippets / elapsed, 3) if elapsed > 0 else 0.0,
               "dropped": self.dropped, "stale_ticks": self.stale, "audio_gaps": self.audio_gaps,
               "latency_p50_ms": self._pct(self.latency_ms, 50), "latency_p95_ms": self._pct(self.latency_ms, 95),
               "av_pairing_p95_ms": self._pct(self.pairing_ms, 95),
               "stages_ms": {k: {"p50": self._pct(v, 50), "p95": self._pct(v, 95)} for k, v in self.stage_ms.items()}}
        return {**out, **(extra or {})}

    def line(self) -> str:
        s = self.summary()
        p95 = s["latency_p95_ms"]
        return (f"{s['snippets_per_s']:.2f} snippets/s, {s['decisions']} decisions, latency p95 "
                f"{p95:.0f} ms, dropped {s['dropped']}, audio gaps {s['audio_gaps']}" if p95 is not None
                else f"{s['snippets']} snippets, waiting for a full window")
