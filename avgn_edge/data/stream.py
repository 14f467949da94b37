"""The endless synthetic stream on any clock: quiet stretches, then an event, and so on.

``StreamTimeline`` grows one ``Timeline`` (synth.py) as far as it is read: a gap of quiet
segments (distractors that never pair a matching colour and sound, silence, hiss), then an
event of ``min_event``..``min_event + 1`` segments of a random label. ``quiet`` is the
expected share of time with no event (a door camera hears nothing most of the day); gaps
are drawn uniformly around the length that gives it, or set explicitly with ``gap``.

Times are stream seconds from 0: frame j (``spec.fps``) shows segment ``j // per`` and is
stamped at the end of its interval, (j + 1) / fps. The real-time ``synth://`` source
(io/synthstream.py) puts this on the monotonic clock; ``snippets`` runs the live loop's
snippet clock on a simulated one, as fast as the CPU renders (event-level evaluation).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterator

import numpy as np

from ..errors import InputError
from .synth import LABELS, Segment, SynthSpec, Timeline, frames_per_segment

DEFAULT_QUIET = 0.9
KEEP_SEGMENTS = 256          # 64 s of 0.25 s segments: far more than any window or audio look-back
KEEP_EVENTS = 64             # a few minutes of events for a live source's ground truth


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


def quiet_gap(quiet: float, min_event: int) -> tuple[int, int]:
    """Gap lengths (segments, inclusive range) whose mean gives ``quiet`` share of quiet time."""
    if not 0.0 <= quiet < 1.0:
        raise InputError(f"synth quiet must be in [0, 1), got {quiet}",
                         hint="the share of time with no event, e.g. quiet=0.9")
    mean_gap = quiet * (min_event + 0.5) / (1.0 - quiet)
    return int(round(0.5 * mean_gap)), int(round(1.5 * mean_gap))


class StreamTimeline:
    """Frames, audio and ground truth of an endless seeded stream (not thread-safe). It keeps
    only its recent segments (a service runs for months: older ones render as empty
    background) and, with ``keep_events``, only that many recent events."""

    def __init__(self, spec: SynthSpec | None = None, *, quiet: float | None = None,
                 events: tuple[str, ...] | None = None, gap: tuple[int, int] | None = None,
                 keep_events: int | None = None):
        spec = spec or SynthSpec()
        if isinstance(spec.noise, tuple) or isinstance(spec.distractors, tuple):
            raise InputError("a stream needs fixed noise and distractor levels, not ranges")
        if gap is not None and quiet is not None:
            raise InputError("give the stream's quiet share or its gap, not both")
        self.spec = dataclasses.replace(spec, clips=1)
        self.quiet = DEFAULT_QUIET if gap is None and quiet is None else quiet
        self.gap = gap if gap is not None else quiet_gap(self.quiet, spec.min_event)
        self._rng = np.random.default_rng([self.spec.seed, 7919])
        self._tl = Timeline(self.spec, self._rng)
        self._tl.segments = Recent(KEEP_SEGMENTS, Segment())
        if keep_events:
            self._tl.events = Recent(keep_events)
        self._labels = [LABELS.index(e) for e in events] if events else list(range(len(LABELS)))
        self.per = frames_per_segment(self.spec)
        self.frame_period = self.spec.snippet_period / self.per

    def _extend(self, segment: int):
        tl, rng, sp = self._tl, self._rng, self.spec
        while len(tl.segments) <= segment + 1:
            for _ in range(int(rng.integers(self.gap[0], self.gap[1] + 1))):
                tl.add_distractor_segment()
            tl.add_event(int(rng.choice(self._labels)), int(rng.integers(sp.min_event, sp.min_event + 2)))

    def frame(self, j: int) -> np.ndarray:
        """Frame j (RGB uint8), shown during ((j) / fps, (j + 1) / fps]."""
        self._extend(j // self.per)
        return self._tl.render_segment(j // self.per, noise_seed=(self.spec.seed, j))

    def audio(self, i0: int, i1: int) -> np.ndarray:
        """Samples [i0, i1) at ``spec.sample_rate`` (sample 0 at time 0)."""
        self._extend(max(i1, 0) // self.spec.segment_samples)
        return self._tl.render_audio(i0, i1)

    def events(self, until: float) -> list[dict]:
        """Ground truth: events that started by ``until`` s, label and [t_start, t_end) in stream s."""
        p = self.spec.snippet_period
        self._extend(int(until / p))
        return [{"label": LABELS[e.label], "t_start": e.start * p, "t_end": (e.start + e.length) * p, "box": e.box}
                for e in self._tl.events if e.start * p <= until]

    def snippets(self, n: int, phase: float = 0.0) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
        """The live loop's snippet clock on a simulated one: tick i at (i + 1 + phase) x period
        takes the newest frame due then and the audio window that ends at that frame's time.
        Yields (frame, audio window, t) for n ticks; phase 0 aligns ticks with segment ends."""
        if not 0.0 <= phase < 1.0:
            raise InputError(f"phase must be in [0, 1) snippet periods, got {phase}")
        sp = self.spec
        for i in range(n):
            j = int(np.floor((i + 1 + phase) * self.per + 1e-9)) - 1
            t = (j + 1) * self.frame_period
            end = int(round(t * sp.sample_rate))
            yield self.frame(j), self.audio(end - sp.audio_samples, end), t
