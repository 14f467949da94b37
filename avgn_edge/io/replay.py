"""``synth://?replay=SECONDS``: the synthetic stream rendered once, then looped from memory.

The first ``SECONDS`` of a ``synth://`` stream (rounded up to whole snippet periods) are
rendered when the source opens: every frame at ``spec.fps`` and the audio track. After that
the source only indexes arrays: frame j is frame ``j mod N`` of the loop and sample i is
sample ``i mod L``, on the same clock as ``synth://`` (frame j due at t0 + (j + 1) / fps).
Memory is the loop (N frames + L samples) however long it runs. It exists so that a
many-streams benchmark measures the service and not the generator (rendering a frame costs
about as much as a glance call).

Loops are kept in a small process-wide cache keyed by the stream's options, so a benchmark
that opens the same streams run after run renders them once (``clear_cache`` frees it).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

import numpy as np

from .synthstream import SynthStream
from .video import Frame

CACHE_BYTES = 1 << 30          # loops kept for reuse (a 2 s loop of 128 px frames is ~1.3 MB)
_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


class Loop:
    """The rendered loop: ``frames`` (N, H, W, 3) uint8, ``audio`` (L,) float32, ``events``."""

    def __init__(self, frames: np.ndarray, audio: np.ndarray, events: list[dict], seconds: float):
        self.frames, self.audio, self.events, self.seconds = frames, audio, events, seconds

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + self.audio.nbytes


def _render(stream: SynthStream, seconds: float) -> Loop:
    tl = stream.timeline
    segments = max(1, math.ceil(seconds / tl.spec.snippet_period - 1e-9))
    n = segments * tl.per
    frames = np.stack([tl.frame(j) for j in range(n)])
    audio = np.ascontiguousarray(tl.audio(0, segments * tl.spec.segment_samples), np.float32)
    length = segments * tl.spec.snippet_period
    events = [e for e in tl.events(length) if e["t_start"] < length]
    frames.setflags(write=False)
    audio.setflags(write=False)
    return Loop(frames, audio, events, length)


def loop_for(stream: SynthStream, key, seconds: float) -> Loop:
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    loop = _render(stream, seconds)
    with _cache_lock:
        _cache[key] = loop
        while len(_cache) > 1 and sum(x.nbytes for x in _cache.values()) > CACHE_BYTES:
            _cache.popitem(last=False)
    return loop


def clear_cache():
    with _cache_lock:
        _cache.clear()


def cached_bytes() -> int:
    with _cache_lock:
        return sum(x.nbytes for x in _cache.values())


class ReplayStream(SynthStream):
    name = "replay"

    def __init__(self, spec=None, *, replay: float, **options):
        super().__init__(spec, **options)
        key = (self.spec, tuple(sorted((k, v) for k, v in options.items() if v is not None)), float(replay))
        self.loop = loop_for(self, key, replay)
        self.timeline = None                     # nothing renders after this: the loop is all there is
        self.t0 = time.monotonic()              # the clock starts once the loop is ready

    def _render_frame(self, j: int) -> Frame:
        return Frame(self.loop.frames[j % len(self.loop.frames)], self.t0 + (j + 1) * self.frame_period, j)

    def _render_audio(self, i0: int, i1: int) -> np.ndarray:
        a = self.loop.audio
        start = i0 % len(a)
        if start + (i1 - i0) <= len(a):
            return a[start:start + i1 - i0]
        return a[np.arange(i0, i1) % len(a)]

    def ground_truth(self, until: float | None = None) -> list[dict]:
        until = time.monotonic() if until is None else until
        length, out = self.loop.seconds, []
        for k in range(max(0, int((until - self.t0) // length) - 1), int((until - self.t0) // length) + 1):
            for e in self.loop.events:
                t = self.t0 + k * length
                if t + e["t_start"] <= until:
                    out.append({**e, "t_start": t + e["t_start"], "t_end": t + e["t_end"]})
        return out
