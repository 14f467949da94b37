"""``synth://``: the synthetic benchmark as an endless real-time audio-visual stream.

The stream's content is a ``StreamTimeline`` (data/stream.py): quiet stretches (the
``quiet`` share of the time, 0.9 by default) and events of a random label. Frame j
(``spec.fps``, a whole number per segment) is stamped at the *end* of its interval,
t0 + (j + 1) / fps: so the last frame of segment i carries the segment's end time, and the
audio window ending at a frame's ``t`` is the pairing the training clips use. Frames are
rendered on demand when ``latest()`` is called (no thread: nothing is rendered that nobody
reads); audio comes from the same timeline.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from ..data.stream import KEEP_EVENTS, StreamTimeline
from ..data.synth import SynthSpec
from .track import TrackAudio
from .video import Frame, VideoSource


class SynthStream(VideoSource):
    name = "synth"

    def __init__(self, spec: SynthSpec | None = None, *, seed: int | None = None,
                 distractors: float | None = None, noise: float | None = None,
                 events: tuple[str, ...] | None = None, gap: tuple[int, int] | None = None,
                 quiet: float | None = None):
        super().__init__()
        knobs = {k: v for k, v in (("seed", seed), ("distractors", distractors), ("noise", noise))
                 if v is not None}
        self.timeline = StreamTimeline(dataclasses.replace(spec or SynthSpec(), **knobs), quiet=quiet,
                                       events=events, gap=gap, keep_events=KEEP_EVENTS)
        self.spec = self.timeline.spec
        self._lock = threading.Lock()        # the timeline (segment list, audio cache) is not thread-safe
        self.per = self.timeline.per
        self.frame_period = self.timeline.frame_period
        self.t0 = time.monotonic()
        self._audio: dict[int, TrackAudio] = {}
        self._delivered = 0

    def _render_frame(self, j: int) -> Frame:
        with self._lock:
            img = self.timeline.frame(j)
        return Frame(img, self.t0 + (j + 1) * self.frame_period, j)

    def _render_audio(self, i0: int, i1: int) -> np.ndarray:
        with self._lock:
            return self.timeline.audio(i0, i1)

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
        with self._lock:
            events = self.timeline.events(until - self.t0)
        return [{**e, "t_start": self.t0 + e["t_start"], "t_end": self.t0 + e["t_end"]} for e in events]
