"""Calibration: the inputs each stage really sees, captured from the FP32 pipeline.

The FP32 runtime runs over calibration clips; a recording backend keeps every stage's
feeds. So the local encoder is calibrated on the patches the policy chose, the head on
real selections, the glance encoders on real snippets - not on random crops or zeros.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..bundle import STAGES, Bundle
from ..errors import InputError

log = logging.getLogger(__name__)

DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "calibration" / "synth.json"


class RecordingBackend:
    """Keeps up to ``limit`` items per stage, one batch-1 feed each: what is calibrated on and
    held out never depends on how the pipeline happened to batch (a clip's T snippets in one
    glance call, or one by one)."""

    def __init__(self, inner, limit: int):
        self.inner, self.limit = inner, limit
        self.name, self.precision = inner.name, inner.precision
        self.feeds: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in STAGES}

    def run(self, stage, feeds):
        n = len(next(iter(feeds.values())))
        for i in range(min(n, self.limit - len(self.feeds[stage]))):
            self.feeds[stage].append({k: np.array(v[i:i + 1]) for k, v in feeds.items()})
        return self.inner.run(stage, feeds)

    def close(self):
        self.inner.close()


def load_recipe(calib: str | None) -> dict:
    """``None`` -> calibration/synth.json; a .json recipe; a folder of videos; or a synth: URI."""
    if calib is None:
        calib = str(DEFAULT_RECIPE) if DEFAULT_RECIPE.is_file() else "synth:seed=2000,clips=64"
    p = Path(calib)
    if p.suffix == ".json":
        if not p.is_file():
            raise InputError(f"calibration recipe {p} not found")
        return json.loads(p.read_text())
    return {"data": calib, "clips": 64, "max_samples_per_stage": 512, "method": "minmax"}


def capture(bundle: Bundle, recipe: dict, data_cfg=None) -> dict[str, list[dict[str, np.ndarray]]]:
    from ..data.datasets import open_dataset
    from ..runtime.ort import OrtBackend
    from ..runtime.pipeline import HostPipeline
    from ..runtime.recognizer import Recognizer

    dataset = open_dataset(recipe["data"], data_cfg or bundle.config)
    rec_backend = RecordingBackend(OrtBackend(bundle, "fp32"), recipe.get("max_samples_per_stage", 512))
    rec = Recognizer(bundle, rec_backend, HostPipeline(bundle, rec_backend))
    n = min(recipe.get("clips", 64), len(dataset))
    for i in range(n):
        s = dataset[i]
        rec.classify_snippets(s.frames, s.audio)
    log.info("calibration: %d clips from %s -> %s", n, recipe["data"],
             ", ".join(f"{s} {len(v)}" for s, v in rec_backend.feeds.items()))
    return rec_backend.feeds


def stack_feeds(feeds: list[dict[str, np.ndarray]], n: int) -> dict[str, np.ndarray]:
    """One feed of ``n`` items from batch-1 feeds (cycled where there are fewer)."""
    items = [feeds[i % len(feeds)] for i in range(n)]
    return {k: np.concatenate([f[k] for f in items]) for k in items[0]}
