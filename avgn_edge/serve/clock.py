"""The snippet clock: every ``period`` s, the newest frame and the audio window ending at it.

Ticks fall on a fixed grid ``epoch + n * period``; a service gives all its streams one
epoch, so their snippets come due together and batch well. A tick taken more than a
period late (a stalled thread, an overloaded machine) is not made up: the clock skips to
the grid and counts the ticks it lost (``stats.late``), so a stream that cannot keep up
shows it instead of silently slowing down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Snippet:
    frame: np.ndarray
    audio: np.ndarray
    t: float                 # the frame's timestamp (monotonic); the audio window ends here
    audio_ok: bool
    pairing_ms: float        # how far the audio we had fell short of the frame's time
    restart: bool = False    # a gap or a reconnect came before this snippet: restart the window


class SnippetClock:
    def __init__(self, video, audio, period: float, samples: int, *, stats, audio_wait: float = 0.15,
                 epoch: float | None = None):
        self.video, self.audio, self.period, self.samples = video, audio, period, samples
        self.stats, self.audio_wait = stats, audio_wait
        self.epoch = time.monotonic() if epoch is None else epoch
        self._tick = self._next_tick(time.monotonic())
        self._last_t: float | None = None
        self._reconnects = video.stats.get("reconnects", 0)
        self.last_frame_at = time.monotonic()        # when a new frame last came (offline detection)

    def _next_tick(self, now: float) -> float:
        return self.epoch + math.ceil((now - self.epoch) / self.period + 1e-9) * self.period

    def wait(self, stop: threading.Event) -> bool:
        """Sleep until the next tick; False when ``stop`` was set."""
        now = time.monotonic()
        if now > self._tick + self.period:               # fell behind: skip to the grid, count the loss
            lost = int((now - self._tick) / self.period)
            self.stats.late += lost
            self._tick += lost * self.period
        if stop.wait(max(0.0, self._tick - now)):
            return False
        self._tick += self.period
        return True

    def take(self) -> Snippet | None:
        """The snippet of this tick, or None (no new frame: a stale tick, or the end of a file)."""
        frame = self.video.latest(timeout=self.period)
        if frame is None or (self._last_t is not None and frame.t <= self._last_t):
            if not self.video.eos:
                self.stats.stale += 1
            return None
        self.last_frame_at = time.monotonic()
        reconnects = self.video.stats.get("reconnects", 0)
        restart = self._last_t is not None and (frame.t - self._last_t > 3 * self.period
                                                or reconnects != self._reconnects)
        if restart:
            log.warning("%s: %.1f s gap in the video (reconnects: %d): restarting the window",
                        getattr(self.video, "name", "video"), frame.t - self._last_t, reconnects)
        self._reconnects, self._last_t = reconnects, frame.t
        if self.audio is not None:
            wave, ok = self.audio.window(frame.t, self.samples, timeout=self.audio_wait)
            short = max(0.0, frame.t - self.audio.available_until())
        else:
            wave, ok, short = np.zeros(self.samples, np.float32), False, 0.0
        return Snippet(frame.image, wave, frame.t, ok, 1e3 * short, restart)
