"""One stream's state: its ring of the last T snippets, its input checks and its decision cadence.

A Recognizer owns one for push mode; a service owns one per camera and runs many of them
through one model, batched (``Recognizer.encode_many`` / ``Recognizer.decide_many``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .inputs import Warner, check_audio, check_frame
from .ring import SnippetRing

log = logging.getLogger(__name__)


@dataclass
class Checked:
    """A validated snippet, ready to encode."""
    window: "StreamWindow"
    frame: np.ndarray
    wave: np.ndarray
    t: float
    audio_ok: bool
    restart: bool            # the frame size changed: the window restarts with this snippet


class StreamWindow:
    def __init__(self, config, stride: int = 2):
        if not isinstance(stride, int) or stride < 1:
            raise InputError(f"stride must be an integer >= 1, got {stride!r}")
        self.config, self.stride = config, stride
        self.ring = SnippetRing(config.num_snippets)
        self._warn = Warner()
        self._frame_shape: tuple | None = None
        self._last_t: float | None = None          # of the last snippet checked (pushed or about to be)

    def reset(self):
        """Forget the window (a scene cut, a reconnect, a new clip)."""
        self.ring.reset()
        self._frame_shape = self._last_t = None

    @property
    def due(self) -> bool:
        """A decision is due: T snippets are in and ``stride`` new ones since the last decision."""
        return self.ring.full and (self.ring.count - self.ring.size) % self.stride == 0

    def check(self, frame, audio, timestamp, sample_rate: int | None = None) -> Checked:
        """Validate one snippet (InputError leaves the window as it was)."""
        frame = check_frame(frame, self._warn)
        try:
            t = float(timestamp)
        except (TypeError, ValueError):
            raise InputError(f"timestamp must be a number, got {timestamp!r}") from None
        if not np.isfinite(t):
            raise InputError(f"timestamp must be finite, got {t}")
        if self._last_t is not None and t <= self._last_t:
            raise InputError(f"timestamps must increase: {t:.4f} after {self._last_t:.4f}")
        cfg = self.config
        wave, audio_ok = check_audio(audio, cfg.audio_samples, cfg.sample_rate, sample_rate, self._warn)
        restart = self._frame_shape is not None and frame.shape != self._frame_shape
        if restart:
            log.warning("frame size changed %s -> %s: window restarted", self._frame_shape, frame.shape)
        self._frame_shape, self._last_t = frame.shape, t
        return Checked(self, frame, wave, t, audio_ok, restart)

    def add(self, c: Checked, features: dict[str, np.ndarray]) -> None:
        if c.restart:
            self.ring.reset()
        self.ring.push(c.frame, c.t, features, c.audio_ok)


def ring_slots(items: list[Checked]) -> list[int]:
    """The ring slot each checked snippet will occupy once added, in order (several may belong to one
    window; a restart starts its window over at slot 0). A device-resident ring writes features there."""
    counts: dict[int, int] = {}
    slots = []
    for c in items:
        n = 0 if c.restart else counts.get(id(c.window), c.window.ring.count)
        slots.append(n % c.window.ring.size)
        counts[id(c.window)] = n + 1
    return slots
