"""Evaluation: AVGN and, in the same run on the same clips, its baselines.

* dense          - the local encoder on all T full frames (+ glance and audio), its own head
* glance_only    - the glance encoder and its auxiliary head
* audio_only     - the audio encoder and its auxiliary head
* random_frames  - AVGN with k random snippets instead of AV-TeST's top-k
* random_patches - AVGN with uniformly random patch centres instead of the policy's

Saliency precision@k: the fraction of the k chosen snippets that show the event (events
last at least k snippets, so a perfect selector scores 1). Patch hit rate: over chosen
snippets that show the event, the fraction whose patch holds at least half the object.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..model.avgn import take
from ..model.flops import stage_gflops
from ..model.views import clamp_centres
from .batches import loader

BASELINES = ("dense", "glance_only", "audio_only", "random_frames", "random_patches")


def average_precision(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean over classes present in ``labels`` of one-vs-rest average precision."""
    aps = []
    for c in range(num_classes):
        pos = labels == c
        if not pos.any():
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        hits = pos[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def patch_hits(centres: torch.Tensor, boxes: torch.Tensor, patch: int, frame: int) -> torch.Tensor:
    """[N,2] centres, [N,4] object boxes (pixels) -> [N] bool: >= half the object inside the patch."""
    c = clamp_centres(centres, patch, frame) * frame
    px0, py0 = c[:, 0] - patch / 2, c[:, 1] - patch / 2
    ix = (torch.minimum(px0 + patch, boxes[:, 2]) - torch.maximum(px0, boxes[:, 0])).clamp(min=0)
    iy = (torch.minimum(py0 + patch, boxes[:, 3]) - torch.maximum(py0, boxes[:, 1])).clamp(min=0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return ix * iy >= 0.5 * area


@torch.no_grad()
def evaluate(model, dataset, batch_size: int = 16, seed: int = 0, progress: bool = True,
             baselines: bool = True, workers: int = 1, device=None, gather=None, costs: bool = True) -> dict:
    """Metrics of ``model`` on ``dataset``. ``device``: where the model is (batches follow);
    ``gather``: joins the per-clip results of every process (a validation shard each);
    ``costs``: also count GFLOPs per stage (validation during training skips it)."""
    model.eval()
    cfg = model.cfg
    device = device or next(model.parameters()).device
    join = (lambda t: gather(t.to(device)).cpu()) if gather else (lambda t: t.cpu())
    gen = torch.Generator().manual_seed(seed)
    scores = {name: [] for name in ("avgn",) + (BASELINES if baselines else ())}
    labels, precision, hits = [], [], []
    has_gt = getattr(dataset, "has_ground_truth", False)
    for batch in tqdm(loader(dataset, batch_size, shuffle=False, workers=workers), desc="eval",
                      disable=not progress, dynamic_ncols=True):
        batch = {k: v.to(device) for k, v in batch.items()}
        frames, audio, y = batch["frames"], batch["audio"], batch["label"]
        b, own = y.shape[0], batch["own"]           # an undecodable file counts nowhere
        mine = lambda t: t[own]                     # noqa: E731
        gmap, gvec = model.encode_glance(model.glance_input(frames))
        avec = model.encode_audio(audio)
        images = model.full_input(frames)
        d = model.decide(gmap, gvec, avec)
        lvec = model.focus(images, d.indices, d.centres)
        scores["avgn"].append(mine(model.classify(gvec, avec, lvec, d.saliency, d.indices).softmax(-1)))
        labels.append(mine(y))
        if has_gt:
            ev = take(batch["events"][..., None], d.indices)[..., 0]              # [B,k]
            precision.append(mine(ev.float().mean(1)))
            sel_boxes = take(batch["boxes"], d.indices)                           # [B,k,4]
            h = patch_hits(d.centres.flatten(0, 1), sel_boxes.flatten(0, 1), cfg.patch_size, cfg.frame_size)
            hits.append(h[(ev & own[:, None]).flatten()])
        if not baselines:
            continue
        scores["dense"].append(mine(model.dense_logits(gvec, avec, model.dense_maps(images)).softmax(-1)))
        scores["glance_only"].append(mine(model.glance_head(gvec).softmax(-1)))
        scores["audio_only"].append(mine(model.audio_head(avec).softmax(-1)))
        rand_idx = torch.stack([torch.randperm(cfg.num_snippets, generator=gen)[:cfg.top_k] for _ in range(b)]).to(device)
        dr = model.decide(gmap, gvec, avec, indices=rand_idx)
        lr_ = model.focus(images, rand_idx, dr.centres)
        scores["random_frames"].append(mine(model.classify(gvec, avec, lr_, d.saliency, rand_idx).softmax(-1)))
        rand_c = torch.rand(d.centres.shape, generator=gen).to(device)
        lp = model.focus(images, d.indices, rand_c)
        scores["random_patches"].append(mine(model.classify(gvec, avec, lp, d.saliency, d.indices).softmax(-1)))
    y = join(torch.cat(labels)).numpy()
    flops = stage_gflops(model) if costs else {}
    result = {}
    for name, chunks in scores.items():
        s = join(torch.cat(chunks)).float().numpy()
        result[name] = {"top1": float((s.argmax(1) == y).mean()),
                        "map": average_precision(s, y, cfg.num_classes),
                        "gflops_per_clip": flops.get("avgn" if name.startswith("random") else name)}
    out = {"clips": int(len(y)), **result.pop("avgn"),
           "gflops_by_stage": {k: flops[k] for k in ("glance_visual", "glance_audio", "decide", "focus_local", "head")
                               if k in flops},
           "saliency_precision_at_k": float(join(torch.cat(precision)).mean()) if precision else None,
           "patch_hit_rate": _mean(join(torch.cat(hits).float())) if hits else None}
    if baselines:
        out["baselines"] = result
    return out


def _mean(t: torch.Tensor) -> float | None:
    return float(t.mean()) if len(t) else None
