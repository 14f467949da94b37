"""The PyTorch baselines on the simulated stream: the same snippets, windows, tracker and
event metrics as the deployed pipeline's ``eval --stream`` (avgn_edge/events/evaluate.py).

The baselines exist only in PyTorch (train/evaluate.py names them). Each snippet is
encoded once (glance, audio, and the local encoder on the whole frame for dense); every
``stride`` snippets, once T are in, a window is decided exactly as ``Recognizer.push``
decides, by every model at once, and each model's decisions go to its own event tracker.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..events.evaluate import Tally, snippet_count
from ..model.local import LocalEncoder
from ..model.views import crop_patches
from ..runtime.result import Result
from .evaluate import BASELINES

MODELS = ("avgn_pytorch",) + BASELINES


class _Window:
    """Per-snippet features of the recent snippets, indexable by global snippet number."""

    def __init__(self):
        self.first, self.parts = 0, {}

    def extend(self, first: int, parts: dict[str, torch.Tensor], keep: int):
        if not self.parts:
            self.first, self.parts = first, parts
        else:
            drop = max(0, len(self.parts["t"]) - keep)
            self.first += drop
            self.parts = {k: torch.cat([v[drop:], parts[k]]) for k, v in self.parts.items()}

    def take(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        return self.parts[name][idx - self.first]


@torch.no_grad()
def _encode(model, frames: np.ndarray, audio: np.ndarray, times: list[float]) -> dict[str, torch.Tensor]:
    f = torch.from_numpy(np.ascontiguousarray(frames))[None]
    gmap, gvec = model.encode_glance(model.glance_input(f))
    full = model.full_input(f)[0]
    return {"gmap": gmap[0], "gvec": gvec[0], "avec": model.encode_audio(torch.from_numpy(audio)[None])[0],
            "dvec": LocalEncoder.pool(model.local(full)), "full": full, "t": torch.tensor(times, dtype=torch.float64)}


@torch.no_grad()
def _decide_all(model, win: _Window, ends: list[int], gen: torch.Generator) -> tuple[dict, np.ndarray]:
    """Every model's (scores, saliency, chosen snippets) for the windows ending at snippets
    ``ends``, and the windows' timestamps."""
    cfg = model.cfg
    T, k, P = cfg.num_snippets, cfg.top_k, cfg.patch_size
    idx = torch.tensor(ends)[:, None] + torch.arange(-T + 1, 1)[None]            # [W,T] global snippet numbers
    gmap, gvec, avec = win.take("gmap", idx), win.take("gvec", idx), win.take("avec", idx)
    w = len(ends)

    def focus(indices, centres):
        frames = win.take("full", torch.gather(idx, 1, indices).flatten())
        return model.local_vectors(crop_patches(frames, centres.flatten(0, 1), P)).view(w, k, -1)

    def head(lvec, saliency, indices):
        return model.classify(gvec, avec, lvec, saliency, indices).softmax(-1)

    d = model.decide(gmap, gvec, avec)
    rand_idx = torch.stack([torch.randperm(T, generator=gen)[:k] for _ in range(w)])
    dr = model.decide(gmap, gvec, avec, indices=rand_idx)
    rand_c = torch.rand(d.centres.shape, generator=gen)
    scores = {"avgn_pytorch": head(focus(d.indices, d.centres), d.saliency, d.indices),
              "dense": model.dense_head(gvec, avec, win.take("dvec", idx)).softmax(-1),
              "glance_only": model.glance_head(gvec).softmax(-1), "audio_only": model.audio_head(avec).softmax(-1),
              "random_frames": head(focus(rand_idx, dr.centres), d.saliency, rand_idx),
              "random_patches": head(focus(d.indices, rand_c), d.saliency, d.indices)}
    chosen = {"random_frames": rand_idx}
    out = {}
    for name, s in scores.items():
        out[name] = (s.numpy(), d.saliency.numpy(), chosen.get(name, d.indices).numpy())
    return out, win.take("t", idx).numpy()


def evaluate_baselines(model, timeline, hours: float, stride: int = 2, settings=None, phase: float = 0.0,
                       seed: int = 0, chunk: int = 256, progress: bool = True) -> dict[str, dict]:
    """Event metrics of AVGN (PyTorch) and every baseline over ``hours`` of ``timeline``."""
    model.eval()
    cfg = model.cfg
    T, n = cfg.num_snippets, snippet_count(cfg, hours)
    tallies = {m: Tally(cfg.labels, settings) for m in MODELS}
    gen = torch.Generator().manual_seed(seed)
    win, buf, t = _Window(), [], 0.0
    no_boxes = np.zeros((cfg.top_k, 4), np.float32)
    snippets = tqdm(timeline.snippets(n, phase), total=n, desc="baselines", unit="snippet", disable=not progress,
                    dynamic_ncols=True, mininterval=2.0)
    for i, (frame, audio, t) in enumerate(snippets):
        buf.append((frame, audio, t))
        if len(buf) < chunk and i < n - 1:
            continue
        first = i + 1 - len(buf)
        frames, waves, times = zip(*buf)
        win.extend(first, _encode(model, np.stack(frames), np.stack(waves), list(times)), keep=T - 1)
        buf = []
        ends = [e for e in range(max(first, T - 1), i + 1) if (e + 1 - T) % stride == 0]
        if not ends:
            continue
        scores, stamps = _decide_all(model, win, ends, gen)
        for name, (s, sal, ind) in scores.items():
            for j in range(len(ends)):
                tallies[name].add(Result(s[j], cfg.labels, sal[j], stamps[j], ind[j], no_boxes))
    window_s = T * cfg.snippet_period
    return {name: tally.report(timeline, t, window_s) for name, tally in tallies.items()}
