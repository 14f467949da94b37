"""The Recognizer: the API apps embed.

Push mode, for apps that own their capture (robotics, surveillance)::

    rec = Recognizer.load("synth")                 # shipped bundle; or a bundle folder
    for frame, audio, t in my_capture():           # one snippet every rec.config.snippet_period s
        result = rec.push(frame, audio, t)         # RGB uint8 frame, mono audio ending at t
        if result:
            print(result.t, result.top(3))

Clip mode: ``rec.classify_clip("clip.mp4")``. Stream mode (the recognizer owns capture):
see ``avgn_edge.live``.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..bundle import Bundle, load_bundle
from ..errors import InputError
from ..media import read_snippets
from .backend import open_backend
from .inputs import Warner, check_audio, check_frame
from .pipeline import HostPipeline, Timer
from .result import Result
from .ring import SnippetRing

log = logging.getLogger(__name__)


class Recognizer:
    def __init__(self, bundle: Bundle, backend, pipeline, stride: int = 2):
        self.bundle = bundle
        self.config = bundle.config
        self.backend = backend
        self.pipeline = pipeline
        if stride < 1:
            raise InputError(f"stride must be >= 1, got {stride}")
        self.stride = stride
        self.ring = SnippetRing(self.config.num_snippets)
        self._warn = Warner()
        self._frame_shape: tuple | None = None

    @classmethod
    def load(cls, bundle: str | os.PathLike | Bundle = "synth", backend: str = "auto", precision: str = "fp32",
             stride: int = 2, **options) -> "Recognizer":
        b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        be = open_backend(b, backend, precision, **options)
        pipeline = be.pipeline(b) if hasattr(be, "pipeline") else HostPipeline(b, be)
        return cls(b, be, pipeline, stride)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    def reset(self):
        """Forget the window (e.g. after a scene cut or a source reconnect)."""
        self.ring.reset()
        self._frame_shape = None

    def push(self, frame, audio, timestamp: float, sample_rate: int | None = None) -> Result | None:
        """Add one snippet; returns a Result when a decision is made (every ``stride`` snippets
        once T snippets are in), else None. Bad input raises InputError and leaves the ring as it was."""
        timer = self._add(frame, audio, timestamp, sample_rate)
        if not self.ring.full or (self.ring.count - self.ring.size) % self.stride:
            return None
        return self.decide(timer)

    def _add(self, frame, audio, timestamp, sample_rate=None) -> Timer:
        frame = check_frame(frame, self._warn)
        try:
            t = float(timestamp)
        except (TypeError, ValueError):
            raise InputError(f"timestamp must be a number, got {timestamp!r}") from None
        if not np.isfinite(t):
            raise InputError(f"timestamp must be finite, got {t}")
        last = self.ring.last_time
        if last is not None and t <= last:
            raise InputError(f"timestamps must increase: {t:.4f} after {last:.4f}")
        wave, audio_ok = check_audio(audio, self.config.audio_samples, self.config.sample_rate, sample_rate, self._warn)
        if self._frame_shape is not None and frame.shape != self._frame_shape:
            log.warning("frame size changed %s -> %s: window restarted", self._frame_shape, frame.shape)
            self.ring.reset()
        timer = Timer()
        features = self.pipeline.encode(self.ring.count % self.ring.size, frame, wave, timer)
        self._frame_shape = frame.shape
        self.ring.push(frame, t, features, audio_ok)
        return timer

    def decide(self, timer: Timer | None = None) -> Result:
        """A decision over the current window (needs T snippets)."""
        if not self.ring.full:
            raise InputError(f"a decision needs {self.ring.size} snippets, the window has {len(self.ring)}")
        timer = timer or Timer()
        ring = self.ring
        out = self.pipeline.decide(ring, timer)
        order = ring.order()
        return Result(scores=out["scores"], labels=self.labels, saliency=out["saliency"],
                      timestamps=ring.times[order].copy(), indices=out["indices"].astype(np.int64),
                      boxes=out["boxes"], timings=dict(timer.ms), audio_ok=bool(ring.audio_ok[order].all()))

    def classify_clip(self, path: str | os.PathLike) -> Result:
        """Classify a video file: T snippets spread over it (frames and its audio track)."""
        cfg = self.config
        s = read_snippets(path, cfg.num_snippets, cfg.sample_rate, cfg.audio_window)
        return self.classify_snippets(s.frames, s.audio, s.times, audio_ok=s.has_audio)

    def classify_snippets(self, frames, audio, times=None, audio_ok: bool = True) -> Result:
        """Classify T snippets at once (frames [T,H,W,3], audio [T,N]). The live window is kept,
        except on a pipeline whose feature ring lives on the device (TensorRT), where it restarts."""
        T = self.config.num_snippets
        if len(frames) != T or len(audio) != T:
            raise InputError(f"need exactly {T} frames and audio windows, got {len(frames)} and {len(audio)}")
        times = np.arange(1, T + 1) * self.config.snippet_period if times is None else times
        saved = (self.ring, self._frame_shape)
        self.ring, self._frame_shape = SnippetRing(T), None
        try:
            for f, a, t in zip(frames, audio, times):
                timer = self._add(f, a, t)
            result = self.decide(timer)
        finally:
            self.ring, self._frame_shape = saved
            if getattr(self.pipeline, "device_ring", False) and self.ring.count:
                self.reset()              # its device slots now hold this clip's features
        result.audio_ok = result.audio_ok and audio_ok
        return result

    def close(self):
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
