"""The Recognizer: the API apps embed.

Push mode, for apps that own their capture (robotics, surveillance)::

    rec = Recognizer.load("synth")                 # shipped bundle; or a bundle folder
    for frame, audio, t in my_capture():           # one snippet every rec.config.snippet_period s
        result = rec.push(frame, audio, t)         # RGB uint8 frame, mono audio ending at t
        if result:
            print(result.t, result.top(3))

Clip mode: ``rec.classify_clip("clip.mp4")``. Stream mode (the recognizer owns capture):
see ``avgn_edge.live``. Many streams through one model: ``new_window`` + the batched
``encode_many``/``decide_many`` (see ``avgn_edge.serve``).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..bundle import Bundle, load_bundle
from ..errors import AvgnError, InputError
from ..media import read_snippets
from .backend import fall_back, open_backend
from .pipeline import Timer, pipeline_for
from .result import Result
from .window import Checked, StreamWindow

log = logging.getLogger(__name__)


def open_with_pipeline(b: Bundle, backend: str = "auto", precision: str = "fp32", **options) -> tuple:
    """(backend, its pipeline). A TensorRT pipeline that cannot start (the crop kernel cannot be compiled:
    no NVRTC, no cuda_fp16.h, an NVRTC error) closes the backend it opened; ``auto`` then falls back to
    ONNX Runtime with one line saying why, ``trt`` raises (one line)."""
    be = open_backend(b, backend, precision, **options)
    try:
        return be, pipeline_for(b, be)
    except BaseException as exc:
        getattr(be, "close", lambda: None)()
        if backend != "auto" or be.name != "trt" or not isinstance(exc, AvgnError):
            raise
        why = f"the TensorRT pipeline cannot start here: {exc}"
    be = fall_back(b, precision, why, **options)
    return be, pipeline_for(b, be)


class Recognizer:
    """One model (bundle + backend + pipeline) and a default stream window for push mode.

    Many streams share one Recognizer through ``new_window`` and the batched ``encode_many`` /
    ``decide_many``: N snippets of N streams go through the glance stages in one call, the due
    windows through the decision stages in one call (``avgn_edge.serve`` does this).
    """

    def __init__(self, bundle: Bundle, backend, pipeline, stride: int = 2):
        self.bundle = bundle
        self.config = bundle.config
        self.backend = backend
        self.pipeline = pipeline
        self.window = StreamWindow(self.config, stride)

    @classmethod
    def load(cls, bundle: str | os.PathLike | Bundle = "synth", backend: str = "auto", precision: str = "fp32",
             stride: int = 2, **options) -> "Recognizer":
        b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        return cls(b, *open_with_pipeline(b, backend, precision, **options), stride)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def stride(self) -> int:
        return self.window.stride

    @stride.setter
    def stride(self, value: int) -> None:
        self.window.stride = value

    @property
    def ring(self):
        return self.window.ring

    def new_window(self, stride: int = 2) -> StreamWindow:
        """Another stream through this model (a TensorRT pipeline gives it its own device rings)."""
        return StreamWindow(self.config, stride)

    def reset(self):
        """Forget the window (e.g. after a scene cut or a source reconnect)."""
        self.window.reset()

    def push(self, frame, audio, timestamp: float, sample_rate: int | None = None) -> Result | None:
        """Add one snippet; returns a Result when a decision is made (every ``stride`` snippets
        once T snippets are in), else None. Bad input raises InputError and leaves the ring as it was."""
        timer = Timer()
        self.encode_many([self.window.check(frame, audio, timestamp, sample_rate)], timer)
        return self.decide(timer) if self.window.due else None

    def encode_many(self, items: list[Checked], timer: Timer | None = None) -> None:
        """Encode checked snippets (``window.check``; several may belong to one window, in time
        order) and add them to their windows: one glance call for all (split at the engines' batch limit)."""
        timer = timer or Timer()
        if not items:
            return
        feats = self.pipeline.encode_batch(items, timer)
        for i, c in enumerate(items):
            c.window.add(c, {k: v[i] for k, v in feats.items()})

    def decide(self, timer: Timer | None = None) -> Result:
        """A decision over this Recognizer's own window (needs T snippets)."""
        return self.decide_many([self.window], timer)[0]

    def decide_many(self, windows: list[StreamWindow], timer: Timer | None = None) -> list[Result]:
        """Decisions over full windows, batched (one call per decision stage, split at the batch limit)."""
        timer = timer or Timer()
        if not windows:
            return []
        for w in windows:
            if not w.ring.full:
                raise InputError(f"a decision needs {w.ring.size} snippets, the window has {len(w.ring)}")
        rings = [w.ring for w in windows]
        outs = self.pipeline.decide_batch(rings, timer)
        results = []
        for ring, out in zip(rings, outs):
            order = ring.order()
            results.append(Result(scores=out["scores"], labels=self.labels, saliency=out["saliency"],
                                  timestamps=ring.times[order].copy(), indices=out["indices"].astype(np.int64),
                                  boxes=out["boxes"], timings=dict(timer.ms),
                                  audio_ok=bool(ring.audio_ok[order].all()),
                                  heard=out.get("heard"), seen=out.get("seen")))
        return results

    def classify_clip(self, path: str | os.PathLike) -> Result:
        """Classify a video file: T snippets spread over it (frames and its audio track)."""
        cfg = self.config
        s = read_snippets(path, cfg.num_snippets, cfg.sample_rate, cfg.audio_window)
        return self.classify_snippets(s.frames, s.audio, s.times, audio_ok=s.has_audio)

    def classify_snippets(self, frames, audio, times=None, audio_ok: bool = True) -> Result:
        """Classify T snippets at once (frames [T,H,W,3], audio [T,N]): one glance call for the T
        snippets, in a window of their own (the live window is kept)."""
        T = self.config.num_snippets
        if len(frames) != T or len(audio) != T:
            raise InputError(f"need exactly {T} frames and audio windows, got {len(frames)} and {len(audio)}")
        times = np.arange(1, T + 1) * self.config.snippet_period if times is None else times
        clip = StreamWindow(self.config, self.window.stride)
        clip._warn = self.window._warn                    # warn once per kind, clip or live
        timer = Timer()
        self.encode_many([clip.check(f, a, t) for f, a, t in zip(frames, audio, times)], timer)
        result = self.decide_many([clip], timer)[0]
        result.audio_ok = result.audio_ok and audio_ok
        return result

    def close(self):
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
