"""Audio known ahead of time (a decoded file track, the synthetic timeline), released on the
monotonic clock as if it were captured live: see ``TrackAudio``."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import InputError


def _wait_until(source, t_end: float, timeout: float):
    deadline = time.monotonic() + max(timeout, 0.0)
    while source.available_until() < t_end and time.monotonic() < deadline:
        time.sleep(min(0.005, max(deadline - time.monotonic(), 0.0)))


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling to n samples, with a box pre-filter when decimating."""
    k = int(round(len(x) / n)) if n else 1
    if k > 1:
        x = np.convolve(x, np.full(k, 1.0 / k, np.float32), mode="same")
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)


class TrackAudio:
    """Audio that exists ahead of time (a decoded file track, the synthetic timeline),
    released on the monotonic clock like a live capture.

    ``render(i0, i1)`` returns native samples [i0, i1), sample 0 at monotonic ``t0``;
    ``since`` is when the stream started (earlier samples are missing), ``until()`` the
    time up to which it has played (now, or the end of a file).
    """

    def __init__(self, render: Callable[[int, int], np.ndarray], rate: int, t0: float, *,
                 since: float, until: Callable[[], float], native_rate: int | None = None):
        self.rate = int(rate)
        self.native_rate = int(native_rate or rate)
        self._render, self.t0, self.since, self._until = render, t0, since, until
        self._incomplete = 0

    def available_until(self) -> float:
        return self._until()

    def window(self, t_end: float, n: int, timeout: float = 0.0) -> tuple[np.ndarray, bool]:
        if n < 1:
            raise InputError(f"window length must be >= 1 sample, got {n}")
        _wait_until(self, t_end, timeout)
        r = self.native_rate
        nn = int(round(n * r / self.rate))
        stop = int(round((t_end - self.t0) * r))
        start = stop - nn
        out = np.asarray(self._render(start, stop), np.float32).copy()
        lo = int(np.ceil((self.since - self.t0) * r - 1e-6))
        hi = int(np.floor((self.available_until() - self.t0) * r + 1e-6))
        ok = start >= lo and stop <= hi
        if not ok:
            out[:max(0, min(lo - start, nn))] = 0.0
            out[max(0, hi - start):] = 0.0
            self._incomplete += 1
        return (out if nn == n else _resample(out, n)), ok

    @property
    def stats(self) -> dict:
        return {"overflows": 0, "gaps": 0, "incomplete_windows": self._incomplete, "rate": self.rate}

    def close(self):
        pass


def array_render(samples: np.ndarray, offset: float, rate: int, period: float | None = None):
    """render() over a decoded track whose first sample is ``offset`` s after time 0,
    repeating every ``period`` s (a looping file); silence outside the track."""
    samples = np.asarray(samples, np.float32)

    def render(i0: int, i1: int) -> np.ndarray:
        if period is None:
            j = np.arange(i0, i1) - int(round(offset * rate))
        else:
            u = np.arange(i0, i1) / rate
            u = np.where(u >= 0, np.mod(u, period), u)
            j = np.floor((u - offset) * rate + 0.5).astype(np.int64)
        valid = (j >= 0) & (j < len(samples))
        out = np.zeros(i1 - i0, np.float32)
        out[valid] = samples[j[valid]]
        return out

    return render
