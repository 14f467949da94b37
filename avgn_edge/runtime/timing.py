"""Timing helpers: repeated calls, percentiles, and A/B measurements interleaved so that a
noisy machine affects both sides alike."""

from __future__ import annotations

import time

import numpy as np


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 4), "p95_ms": round(float(np.percentile(a, 95)), 4),
            "n": int(len(a))}


def time_calls(fn, n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def interleaved(fns: dict, n: int, warmup: int = 2) -> dict[str, list[float]]:
    """Time each function n times, round-robin (A B C A B C ...)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[k].append((time.perf_counter() - t) * 1e3)
    return out


def ratio(slow: list[float], fast: list[float]) -> float:
    """How many times faster ``fast`` is than ``slow`` (ratio of medians)."""
    return round(float(np.median(slow) / np.median(fast)), 3)


def peak_gflops(size: int = 2048, reps: int = 5) -> float:
    """What this CPU reaches on a large float32 matrix product (numpy's BLAS), in GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    ms = time_calls(lambda: a @ b, reps, warmup=1)
    return round(2 * size ** 3 / (min(ms) * 1e-3) / 1e9, 2)
