"""The glance pipeline: encode each snippet once, then decide -> crop -> focus -> head.

``HostPipeline`` runs over any backend with host (NumPy) I/O and crops with the NumPy
reference of the CUDA kernel; the TensorRT backend brings its own device-resident
pipeline (runtime/trt.py) with the same two methods:

    encode(slot, frame, wave, timer) -> host features to keep in the ring (may be empty)
    decide(ring, timer) -> {"saliency", "indices", "centres", "scores", "boxes"}
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from ..bundle import Bundle
from ..kernels.reference import crop_patches, glance_views, patch_box


class Timer:
    """Accumulates milliseconds per named span: ``with timer("decide"): ...``."""

    def __init__(self):
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t) * 1e3


class HostPipeline:
    def __init__(self, bundle: Bundle, backend):
        self.cfg = bundle.config
        self.backend = backend

    def encode(self, slot: int, frame: np.ndarray, wave: np.ndarray, timer: Timer) -> dict[str, np.ndarray]:
        cfg = self.cfg
        with timer("crop_glance"):
            view = glance_views(frame[None], cfg.glance_size, cfg.mean, cfg.std)
        with timer("glance_visual"):
            v = self.backend.run("glance_visual", {"glance": view})
        with timer("glance_audio"):
            a = self.backend.run("glance_audio", {"wave": wave[None].astype(np.float32, copy=False)})
        return {"gmap": v["gmap"][0], "gvec": v["gvec"][0], "avec": a["avec"][0]}

    def decide(self, ring, timer: Timer) -> dict[str, np.ndarray]:
        cfg = self.cfg
        frames, start = ring.frames, ring.start          # crop reads only the k chosen frames
        gmaps, gvecs, avecs = ring.window("gmap"), ring.window("gvec"), ring.window("avec")
        with timer("decide"):
            d = self.backend.run("decide", {"gmaps": gmaps, "gvecs": gvecs, "avecs": avecs})
        box_frac = cfg.patch_size / cfg.frame_size
        with timer("crop"):
            patches = crop_patches(frames, d["indices"], d["centres"], box_frac, cfg.patch_size, cfg.mean, cfg.std,
                                   start=start)
        with timer("focus_local"):
            lvecs = self.backend.run("focus_local", {"patches": patches})["lvecs"]
        with timer("head"):
            scores = self.backend.run("head", {"gvecs": gvecs, "avecs": avecs, "lvecs": lvecs,
                                               "saliency": d["saliency"], "indices": d["indices"]})["scores"]
        return {**d, "scores": scores, "boxes": boxes_xyxy(d["centres"], box_frac, *frames[0].shape[:2])}


def boxes_xyxy(centres: np.ndarray, box_frac: float, height: int, width: int) -> np.ndarray:
    """Patch boxes (x0, y0, x1, y1) in frame pixels for the policy's centres."""
    return np.array([_xyxy(patch_box(c, box_frac, height, width)) for c in centres], np.float32)


def _xyxy(box):
    x0, y0, bw, bh = box
    return (x0, y0, x0 + bw, y0 + bh)
