"""The glance pipeline: encode each snippet once, then decide -> crop -> focus -> head.

``HostPipeline`` runs over any backend with host (NumPy) I/O and crops with the NumPy
reference of the CUDA kernel; the TensorRT backend brings its own device-resident
pipeline (runtime/trt.py) with the same two methods.
"""

from __future__ import annotations

import time

import numpy as np

from ..bundle import Bundle
from ..kernels.reference import crop_patches, glance_views, patch_box


class Timer:
    def __init__(self):
        self.ms: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                timer.ms[name] = timer.ms.get(name, 0.0) + (time.perf_counter() - self.t) * 1e3
        return _Span()


class HostPipeline:
    def __init__(self, bundle: Bundle, backend):
        self.cfg = bundle.config
        self.backend = backend

    def encode(self, frame: np.ndarray, wave: np.ndarray, timer: Timer) -> dict[str, np.ndarray]:
        cfg = self.cfg
        with timer("crop_glance"):
            view = glance_views(frame[None], cfg.glance_size, cfg.mean, cfg.std)
        with timer("glance_visual"):
            v = self.backend.run("glance_visual", {"glance": view})
        with timer("glance_audio"):
            a = self.backend.run("glance_audio", {"wave": wave[None].astype(np.float32, copy=False)})
        return {"gmap": v["gmap"][0], "gvec": v["gvec"][0], "avec": a["avec"][0]}

    def decide(self, frames: np.ndarray, start: int, gmaps, gvecs, avecs, timer: Timer) -> dict[str, np.ndarray]:
        """frames: the ring's [T, H, W, 3] in slot order, ``start`` = slot of the oldest snippet;
        features in time order."""
        cfg = self.cfg
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
        h, w = frames.shape[1:3]
        boxes = np.array([_xyxy(patch_box(c, box_frac, h, w)) for c in d["centres"]], np.float32)
        return {**d, "scores": scores, "boxes": boxes}


def _xyxy(box):
    x0, y0, bw, bh = box
    return (x0, y0, x0 + bw, y0 + bh)
