"""A camera's sound as an AudioSource: decoded blocks written into a ring at their timestamps.

The ring is addressed by time: sample ``p`` of the ring holds the sound at monotonic time
``base + p / rate``, and a second array remembers which ``p`` each slot last held, so a window
over a span the camera did not deliver (the audio dropped while the picture went on, a late
start, a reconnect) reads as zeros with ok=False. A block that starts within ``snap`` seconds
of where the previous one ended is written right after it (network jitter in the timestamps
must not open holes or overlaps); a later start is a gap, counted once (``gaps``,
``gap_seconds``); an earlier start overwrites (the clock mapping improved: the first seconds'
burst), and one more than 0.5 s earlier (timestamps went back: a jump) counts a restart.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..errors import InputError
from .track import _wait_until


class StreamAudio:
    def __init__(self, rate: int, seconds: float = 8.0, snap: float = 0.03, codec: str = ""):
        self.rate, self.codec, self.snap = int(rate), codec, snap
        self._n = int(seconds * self.rate)
        self._ring = np.zeros(self._n, np.float32)
        self._held = np.full(self._n, -1, np.int64)
        self._lock = threading.Lock()
        self.base: float | None = None      # monotonic time of ring position 0
        self._end = -1                      # ring position after the last sample written
        self.gaps, self.gap_seconds, self.samples, self.restarts = 0, 0.0, 0, 0
        self.level_db: float | None = None  # the last block's RMS level (dBFS), for meters
        self.clock_stats = None             # a callable for the demuxer's clock figures

    def write(self, t: float, samples: np.ndarray):
        """Samples (mono float32 at ``rate``) whose first one was heard at monotonic ``t``."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if not len(x):
            return
        with self._lock:
            if self.base is None:
                self.base = t
            p = int(round((t - self.base) * self.rate))
            if self._end >= 0:
                d = p - self._end
                if abs(d) <= self.snap * self.rate:
                    p = self._end
                elif d > 0 and self.samples >= 2 * self.rate:   # not the first 2 s: the mapping settles
                    self.gaps += 1
                    self.gap_seconds += d / self.rate
                elif d < -self.rate * 0.5:    # timestamps went back: a new run
                    self.restarts += 1
            x = x[-self._n:]
            pos = p + np.arange(len(x))
            self._ring[pos % self._n] = x
            self._held[pos % self._n] = pos
            self._end = p + len(x)
            self.samples += len(x)
            self.level_db = float(20 * np.log10(np.sqrt(np.mean(x * x)) + 1e-9))

    def note_gap(self):
        """The stream lost its sound (a reconnect): the next block starts a new run, its hole counted."""
        with self._lock:
            self._end = -1

    def available_until(self) -> float:
        if self.base is None or self._end < 0:
            return float("-inf")
        return self.base + self._end / self.rate

    def window(self, t_end: float, n: int, timeout: float = 0.0) -> tuple[np.ndarray, bool]:
        if n < 1:
            raise InputError(f"window length must be >= 1 sample, got {n}")
        _wait_until(self, t_end, timeout)
        if self.base is None:
            return np.zeros(n, np.float32), False
        with self._lock:
            stop = int(round((t_end - self.base) * self.rate))
            pos = np.arange(stop - n, stop)
            slot = pos % self._n
            have = self._held[slot] == pos
            out = np.where(have, self._ring[slot], 0.0).astype(np.float32)
        return out, bool(have.all())

    def onsets(self, threshold: float, since: float, hold: float = 0.5) -> list[float]:
        """Monotonic times at which the sound first rose above ``threshold`` after ``hold`` s below
        it, since ``since``: for measurements (clicks)."""
        with self._lock:
            if self.base is None:
                return []
            lo = max(int(round((since - self.base) * self.rate)), self._end - self._n)
            pos = np.arange(lo, self._end)
            slot = pos % self._n
            x = np.where(self._held[slot] == pos, np.abs(self._ring[slot]), 0.0)
        loud = np.flatnonzero(x > threshold)
        if not len(loud):
            return []
        first = loud[np.r_[True, np.diff(loud) > hold * self.rate]]
        return [self.base + (lo + int(i)) / self.rate for i in first]

    @property
    def stats(self) -> dict:
        out = {"overflows": 0, "gaps": self.gaps, "gap_seconds": round(self.gap_seconds, 3),
               "samples": self.samples, "rate": self.rate, "codec": self.codec, "restarts": self.restarts,
               "level_db": None if self.level_db is None else round(self.level_db, 1)}
        if self.clock_stats is not None:
            out.update(self.clock_stats(time.monotonic()))
        return out

    def close(self):
        pass
