"""The glance pipeline: encode each snippet once, then decide -> crop -> focus -> head.

A pipeline is batched and has two methods, which the Recognizer (and through it a service's
scheduler) calls with many streams' items at once:

    encode_batch(items, timer) -> features [N, ...] to keep in the host rings (empty when they
                                  stay on the device); items are checked snippets (window.py)
    decide_batch(rings, timer) -> one {"saliency", "indices", "centres", "scores", "boxes"} per ring

``HostPipeline`` runs over any backend with host (NumPy) I/O and crops with the NumPy
reference of the CUDA kernel: many snippets (of many streams, or a clip's T) in one glance
call, many rings' decisions in one call per decision stage. The TensorRT backend brings its
own device-resident pipeline (runtime/trt_pipeline.py) with the same two methods.

Stages that follow one another without client state in between form a ``CHAIN``: a backend
that can run a chain in one call (a Triton ensemble: ``backend.chains`` and
``backend.run_chain``) gets one call for it, any other backend one call per stage. The crop
splits the decision in two: it needs the k chosen full-resolution frames, which only the
client (the stream's ring) holds.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import contextmanager

import numpy as np

from ..bundle import STAGES, Bundle
from ..kernels.reference import crop_patches_batch, glance_views, patch_box

# name -> stages, in order; an input of a later stage may be an earlier stage's output (tensor
# names are shared). "encode": once per snippet; "focus_head": after the crop, once per decision.
CHAINS = {"encode": ("glance_visual", "glance_audio"), "focus_head": ("focus_local", "head")}


def chain_io(stages: dict, chain: str) -> tuple[list, list]:
    """(inputs, outputs) of a chain as TensorSpecs: the inputs no earlier stage of it produces,
    the outputs no later stage of it consumes (each name once)."""
    names = CHAINS[chain]
    inputs, outputs, made = {}, {}, set()
    for i, s in enumerate(names):
        later = {t.name for n in names[i + 1:] for t in stages[n].inputs}
        inputs.update({t.name: t for t in stages[s].inputs if t.name not in made and t.name not in inputs})
        outputs.update({t.name: t for t in stages[s].outputs if t.name not in later})
        made |= {t.name for t in stages[s].outputs}
    return list(inputs.values()), list(outputs.values())


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


class OneBlasThread:
    """NumPy's BLAS on one thread around the crop's small matrix products: with its own pool of
    threads beside ONNX Runtime's on the same cores, one call of a paper-size crop (8 patches of
    128 px) measured 12 ms on one thread and a median of 540 ms on two, on a busy 2-core machine
    (its threads wait for each other). Limits only BLAS, only inside the block."""

    def __init__(self):
        self.controller = None
        try:
            from threadpoolctl import ThreadpoolController
            self.controller = ThreadpoolController()          # scans the loaded libraries once
        except ImportError:
            pass

    def __call__(self):
        return self.controller.limit(limits=1, user_api="blas") if self.controller else contextlib.nullcontext()


class HostPipeline:
    """Batched: ``encode_batch`` runs the glance stages once for N snippets (of any streams),
    ``decide_batch`` one decision per ring, B rings in one call of each decision stage. A
    call bigger than a stage's batch limit (the manifest's ``max``, or a backend's own
    ``max_batch``: one number, or one per stage) is split."""

    def __init__(self, bundle: Bundle, backend):
        self.cfg = bundle.config
        self.backend = backend
        self.stages = bundle.stages
        own = getattr(backend, "max_batch", None)
        own = own if isinstance(own, dict) else {s: own for s in STAGES}
        self.limit = {s: min(bundle.stages[s].batch.max, own.get(s) or bundle.stages[s].batch.max) for s in STAGES}
        self.fused = set(getattr(backend, "chains", ())) & set(CHAINS)
        self.one_blas_thread = OneBlasThread()
        from .modality import for_bundle
        self.modality = for_bundle(bundle)          # heard / seen / both, when the bundle has its graph

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _split(lambda f: self.backend.run(stage, f), feeds, self.limit[stage])

    def run_chain(self, chain: str, feeds: dict[str, np.ndarray], timer: Timer) -> dict[str, np.ndarray]:
        """Every output of the chain's stages: one call where the backend fuses the chain, else
        one per stage (timed per stage, the names the benchmarks report)."""
        stages = CHAINS[chain]
        if chain in self.fused:
            with timer(chain):
                return _split(lambda f: self.backend.run_chain(chain, f), feeds, min(self.limit[s] for s in stages))
        have = dict(feeds)
        for s in stages:
            with timer(s):
                have.update(self.run(s, {t.name: have[t.name] for t in self.stages[s].inputs}))
        return have

    def encode_batch(self, items, timer: Timer) -> dict[str, np.ndarray]:
        """N checked snippets (frames HxWx3 uint8, sizes may differ) -> features [N, ...]."""
        cfg = self.cfg
        waves = np.ascontiguousarray(np.stack([c.wave for c in items]), np.float32)
        sizes = {c.frame.shape for c in items}
        # frames already at the glance size skip the resize in NumPy (paper: 224 px), not in the graph
        if getattr(self.backend, "frames_encoder", False) and len(sizes) == 1 and \
                items[0].frame.shape[:2] != (cfg.glance_size, cfg.glance_size):
            with timer("encode"):          # the glance view made in the graph, both glance stages in one call
                return _split(lambda f: self.backend.encode_frames(f["frames"], f["wave"]),
                              {"frames": np.stack([c.frame for c in items]), "wave": waves},
                              min(self.limit["glance_visual"], self.limit["glance_audio"]))
        with timer("crop_glance"), self.one_blas_thread():
            views = glance_views([c.frame for c in items], cfg.glance_size, cfg.mean, cfg.std)
        out = self.run_chain("encode", {"glance": views, "wave": waves}, timer)
        return {"gmap": out["gmap"], "gvec": out["gvec"], "avec": out["avec"]}

    def decide_batch(self, rings, timer: Timer) -> list[dict[str, np.ndarray]]:
        """One decision per (full) ring; the crop reads only each window's k chosen frames."""
        cfg = self.cfg
        orders = [r.order() for r in rings]
        gmaps, gvecs, avecs = (np.stack([r.features[n][o] for r, o in zip(rings, orders)])
                               for n in ("gmap", "gvec", "avec"))
        box_frac = cfg.patch_size / cfg.frame_size
        feeds = {"gmaps": gmaps, "gvecs": gvecs, "avecs": avecs}
        if getattr(self.backend, "frames_decider", False) and len({f.shape for r in rings for f in r.frames}) == 1:
            with timer("decision"):       # decide, the crop, focus and head in one call
                frames = np.stack([np.stack([r.frames[i] for i in o]) for r, o in zip(rings, orders)])
                d = _split(lambda f: self.backend.decide_frames({k: f[k] for k in feeds}, f["frames"]),
                           {**feeds, "frames": frames}, min(self.limit[s] for s in ("decide", "focus_local", "head")))
            scores = d["scores"]
        else:
            with timer("decide"):
                d = self.run("decide", feeds)
            with timer("crop"), self.one_blas_thread():
                patches = crop_patches_batch([r.frames for r in rings], [int(o[0]) for o in orders], d["indices"],
                                             d["centres"], box_frac, cfg.patch_size, cfg.mean, cfg.std)
            scores = self.run_chain("focus_head", {"patches": patches, "gvecs": gvecs, "avecs": avecs,
                                                   "saliency": d["saliency"], "indices": d["indices"]}, timer)["scores"]
        heard = seen = None
        if self.modality is not None:
            with timer("modality"):
                heard, seen = self.modality(gvecs, avecs)
        return [{"saliency": d["saliency"][i], "indices": d["indices"][i], "centres": d["centres"][i],
                 "scores": scores[i], "boxes": boxes_xyxy(d["centres"][i], box_frac, *r.frames[int(o[0])].shape[:2]),
                 "heard": None if heard is None else heard[i], "seen": None if seen is None else seen[i]}
                for i, (r, o) in enumerate(zip(rings, orders))]


def pipeline_for(bundle: Bundle, backend):
    """The backend's own device-resident pipeline (TensorRT), else the host pipeline over it."""
    return backend.pipeline(bundle) if hasattr(backend, "pipeline") else HostPipeline(bundle, backend)


def _split(call, feeds: dict[str, np.ndarray], limit: int) -> dict[str, np.ndarray]:
    """``call(feeds)`` in parts of at most ``limit`` items (axis 0 of every feed), outputs joined."""
    n = len(next(iter(feeds.values())))
    if n <= limit:
        return call(feeds)
    parts = [call({k: v[i:i + limit] for k, v in feeds.items()}) for i in range(0, n, limit)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def boxes_xyxy(centres: np.ndarray, box_frac: float, height: int, width: int) -> np.ndarray:
    """Patch boxes (x0, y0, x1, y1) in frame pixels for the policy's centres."""
    return np.array([_xyxy(patch_box(c, box_frac, height, width)) for c in centres], np.float32)


def _xyxy(box):
    x0, y0, bw, bh = box
    return (x0, y0, x0 + bw, y0 + bh)
