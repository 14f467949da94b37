"""``synth://``: the synthetic benchmark as an endless real-time audio-visual stream.

One ``Timeline`` (data/synth.py) grows as time passes: gaps of distractor segments, then
an event (a random label lasting ``min_event``..``min_event + 1`` segments), and so on.
Frame j (``spec.fps``, a whole number per segment) shows segment ``j // per`` and is
stamped at the *end* of its interval, t0 + (j + 1) / fps: so the last frame of segment i
carries the segment's end time, and the audio window ending at a frame's ``t`` is the
pairing the training clips use. Frames are rendered on demand when ``latest()`` is called
(no thread: nothing is rendered that nobody reads); audio comes from the same timeline.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np

from ..data.synth import LABELS, Segment, SynthSpec, Timeline, frames_per_segment
from .track import TrackAudio
from .video import Frame, VideoSource


KEEP_SEGMENTS = 256          # 64 s of 0.25 s segments: far more than any window or audio look-back
KEEP_EVENTS = 64             # a few minutes of events for ground_truth()


class Recent:
    """An append-only list that keeps its last ``keep`` items; indices stay absolute and
    ``len`` counts every item ever appended; a forgotten index reads as ``old``."""

    def __init__(self, keep: int, old=None):
        self._items: collections.deque = collections.deque(maxlen=keep)
        self._count, self._old = 0, old

    def append(self, item):
        self._items.append(item)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int):
        i = i + self._count if i < 0 else i
        first = self._count - len(self._items)
        if not 0 <= i < self._count:
            raise IndexError(i)
        return self._old if i < first else self._items[i - first]

    def __iter__(self):
        return iter(list(self._items))


class SynthStream(VideoSource):
    name = "synth"

    def __init__(self, spec: SynthSpec | None = None, *, seed: int | None = None,
                 distractors: float | None = None, noise: float | None = None,
                 events: tuple[str, ...] | None = None, gap: tuple[int, int] = (3, 6)):
        super().__init__()
        knobs = {k: v for k, v in (("seed", seed), ("distractors", distractors), ("noise", noise))
                 if v is not None}
        self.spec = dataclasses.replace(spec or SynthSpec(), **knobs)
        self._rng = np.random.default_rng([self.spec.seed, 7919])
        self._tl = Timeline(self.spec, self._rng)
        # an endless stream keeps only its recent past (a service runs for months): older
        # segments render as empty background, older events leave ground_truth()
        self._tl.segments = Recent(KEEP_SEGMENTS, Segment())
        self._tl.events = Recent(KEEP_EVENTS)
        self._labels = [LABELS.index(e) for e in events] if events else list(range(len(LABELS)))
        self._gap = gap
        self._lock = threading.Lock()        # the timeline (segment list, audio cache) is not thread-safe
        self.per = frames_per_segment(self.spec)
        self.frame_period = self.spec.snippet_period / self.per
        self.t0 = time.monotonic()
        self._audio: dict[int, TrackAudio] = {}
        self._delivered = 0

    # -- timeline
    def _extend(self, segment: int):
        """Grow the timeline past ``segment`` (call with the lock held)."""
        tl, rng, sp = self._tl, self._rng, self.spec
        while len(tl.segments) <= segment + 1:
            for _ in range(int(rng.integers(self._gap[0], self._gap[1] + 1))):
                tl.add_distractor_segment()
            length = int(rng.integers(sp.min_event, sp.min_event + 2))
            tl.add_event(int(rng.choice(self._labels)), length)

    def _render_frame(self, j: int) -> Frame:
        with self._lock:
            self._extend(j // self.per)
            img = self._tl.render_segment(j // self.per, noise_seed=(self.spec.seed, j))
        return Frame(img, self.t0 + (j + 1) * self.frame_period, j)

    def _render_audio(self, i0: int, i1: int) -> np.ndarray:
        with self._lock:
            self._extend(max(i1, 0) // self.spec.segment_samples)
            return self._tl.render_audio(i0, i1)

    def _due(self) -> int:
        """Index of the newest frame due now (-1 before the first)."""
        return int(np.floor((time.monotonic() - self.t0) / self.frame_period + 1e-9)) - 1

    # -- VideoSource
    def latest(self, timeout: float | None = None) -> Frame | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            j = self._due()
            if j > self._taken:
                self._taken, self._delivered = j, self._delivered + 1
                frame = self._render_frame(j)
                with self._cond:
                    self._frame = frame
                    self._times.append(frame.t)
                return frame
            wake = self.t0 + (self._taken + 2) * self.frame_period
            if deadline is not None:
                if time.monotonic() >= deadline:
                    return None
                wake = min(wake, deadline)
            self._stop.wait(max(wake - time.monotonic(), 0.0))
        return None

    def peek(self) -> Frame | None:
        j = self._due()
        return self._render_frame(j) if j >= 0 else None

    @property
    def eos(self) -> bool:
        return False

    @property
    def stats(self) -> dict:
        return {**super().stats, "frames": max(self._due() + 1, 0), "delivered": self._delivered,
                "fps": round(1.0 / self.frame_period, 2)}

    def audio(self, rate: int | None = None) -> TrackAudio:
        """The stream's sound on the frames' clock (resampled if ``rate`` differs from the spec's)."""
        rate = int(rate or self.spec.sample_rate)
        if rate not in self._audio:
            self._audio[rate] = TrackAudio(self._render_audio, rate, self.t0, since=self.t0,
                                           until=time.monotonic, native_rate=self.spec.sample_rate)
        return self._audio[rate]

    def ground_truth(self, until: float | None = None) -> list[dict]:
        """Events that started by ``until`` (default now), among the last KEEP_EVENTS: label and
        [t_start, t_end) on the stream's monotonic clock."""
        until = time.monotonic() if until is None else until
        p = self.spec.snippet_period
        with self._lock:
            events = list(self._tl.events)
        out = [{"label": LABELS[e.label], "t_start": self.t0 + e.start * p,
                "t_end": self.t0 + (e.start + e.length) * p, "box": e.box} for e in events]
        return [e for e in out if e["t_start"] <= until]
