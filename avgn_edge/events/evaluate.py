"""Event-level evaluation on a simulated clock (``avgn-edge eval --stream``).

Hours of ``synth://`` (data/stream.py) are rendered on a simulated snippet clock as fast
as the CPU allows; the deployed pipeline (``Recognizer.push``, ONNX Runtime or TensorRT)
decides every ``stride`` snippets, the event tracker turns decisions into events, and
``event_metrics`` judges them against the stream's ground truth. The PyTorch baselines
(train/stream_eval.py) go through the same stream, tracker and metrics.
"""

from __future__ import annotations

import time

from tqdm import tqdm

from ..data.stream import StreamTimeline
from ..data.synth import SynthSpec
from ..errors import InputError
from .metrics import detections_of, event_metrics
from .settings import EventSettings
from .tracker import EventTracker


def open_stream(cfg, seed: int, quiet: float | None = None, noise: float | None = None,
                distractors: float | None = None) -> StreamTimeline:
    """The simulated ``synth://?seed=S&quiet=Q&noise=X&distractors=D`` for a model config."""
    knobs = {k: v for k, v in (("noise", noise), ("distractors", distractors)) if v is not None}
    return StreamTimeline(SynthSpec.for_model(cfg, seed=seed, **knobs), quiet=quiet)


def snippet_count(cfg, hours: float) -> int:
    if not hours > 0:
        raise InputError(f"--hours must be positive, got {hours}")
    return int(round(hours * 3600 / cfg.snippet_period))


class Tally:
    """One recognizer's decisions on one stream: its own tracker and the events it announced."""

    def __init__(self, labels, settings: EventSettings | None = None):
        self.tracker = EventTracker(labels, settings, camera="synth")
        self.detections: list[dict] = []
        self.decisions = 0

    def add(self, result):
        self.decisions += 1
        self.detections += detections_of(self.tracker.update(result))

    def report(self, timeline: StreamTimeline, seconds: float, window_s: float) -> dict:
        truth = timeline.events(seconds)
        return {**event_metrics(truth, self.detections, seconds=seconds, window_s=window_s, until=seconds),
                "decisions": self.decisions}


def evaluate_recognizer(rec, timeline: StreamTimeline, hours: float, settings: EventSettings | None = None,
                        phase: float = 0.0, progress: bool = True) -> dict:
    """The deployed pipeline over ``hours`` of the stream: event metrics + how fast it ran."""
    cfg = rec.config
    n = snippet_count(cfg, hours)
    tally = Tally(rec.labels, settings)
    rec.reset()
    start, t = time.perf_counter(), 0.0
    for frame, audio, t in tqdm(timeline.snippets(n, phase), total=n, desc="stream", unit="snippet",
                                disable=not progress, dynamic_ncols=True, mininterval=2.0):
        result = rec.push(frame, audio, t)
        if result is not None:
            tally.add(result)
    wall = time.perf_counter() - start
    out = tally.report(timeline, t, cfg.num_snippets * cfg.snippet_period)
    out.update(snippets=n, wall_s=round(wall, 1), x_real_time=round(t / wall, 1) if wall > 0 else None)
    return out
