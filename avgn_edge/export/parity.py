"""Parity of exported graphs against PyTorch, on real benchmark inputs (never zeros), per batch size.

Inputs are recorded one item at a time (a leading batch of 1); ``batches`` concatenates
consecutive items into the batch sizes checked, so every graph is compared with PyTorch at
batch 1 and at larger batches, and each batched ONNX Runtime output against the same items
run one by one (a batch must never change an item's answer).
"""

from __future__ import annotations

import numpy as np
import torch

from ..bundle import STAGES, Bundle
from ..model.avgn import take
from ..model.views import crop_patches


@torch.no_grad()
def collect_stage_inputs(model, dataset, clips: int | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """Run the PyTorch model over clips and record every stage's inputs, one item (batch 1) each."""
    cfg = model.cfg
    out: dict[str, list] = {s: [] for s in STAGES}
    n = len(dataset) if clips is None else min(clips, len(dataset))
    for i in range(n):
        s = dataset[i]
        frames = torch.from_numpy(s.frames)[None]
        views = model.glance_input(frames)
        wave = torch.from_numpy(np.asarray(s.audio, np.float32))[None]
        gmap, gvec = model.encode_glance(views)
        avec = model.encode_audio(wave)
        d = model.decide(gmap, gvec, avec)
        images = take(model.full_input(frames), d.indices)[0]
        patches = crop_patches(images, d.centres[0], cfg.patch_size)
        lvec = model.local_vectors(patches)
        np_ = lambda x: x.detach().numpy().astype(np.float32)
        for t in range(cfg.num_snippets):
            out["glance_visual"].append({"glance": np_(views[0, t:t + 1])})
            out["glance_audio"].append({"wave": np_(wave[0, t:t + 1])})
        out["decide"].append({"gmaps": np_(gmap), "gvecs": np_(gvec), "avecs": np_(avec)})
        out["focus_local"].append({"patches": np_(patches[None])})
        out["head"].append({"gvecs": np_(gvec), "avecs": np_(avec), "lvecs": np_(lvec[None]),
                            "saliency": np_(d.saliency), "indices": d.indices.numpy().astype(np.int32)})
    return out


BATCH_SIZES = (1, 3, 8)


def batches(items: list[dict[str, np.ndarray]], size: int) -> list[dict[str, np.ndarray]]:
    """Consecutive items concatenated along the batch axis (the last partial batch is dropped)."""
    return [{name: np.concatenate([it[name] for it in items[i:i + size]]) for name in items[0]}
            for i in range(0, len(items) - size + 1, size)]


def _compare(ref: np.ndarray, got: np.ndarray) -> dict:
    if np.issubdtype(ref.dtype, np.integer):
        return {"equal_fraction": float((ref == got).mean())}
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    scale = max(float(np.abs(ref).max()), 1e-12)
    return {"max_abs": float(diff.max()), "max_rel": float(diff.max() / scale)}


def _merge(stats: list[dict]) -> dict:
    keys = stats[0].keys()
    return {k: (min if k == "equal_fraction" else max)(s[k] for s in stats) for k in keys}


@torch.no_grad()
def stage_parity(bundle: Bundle, modules: dict, samples: dict, precision: str = "fp32",
                 sizes: tuple[int, ...] = BATCH_SIZES) -> dict:
    """``stages``: per stage and output, max abs and relative error (vs max |reference|) of ONNX Runtime
    vs PyTorch over every batch size in ``sizes``; ``batch_vs_single``: batched ONNX Runtime outputs
    against the same items run one at a time."""
    from ..runtime.ort import OrtBackend
    backend = OrtBackend(bundle, precision)
    report, batch_vs_single = {}, {}
    for stage in STAGES:
        spec = bundle.stages[stage]
        per_output: dict[str, list] = {t.name: [] for t in spec.outputs}
        consistency: dict[str, list] = {t.name: [] for t in spec.outputs}
        singles = [backend.run(stage, feed) for feed in samples[stage]]
        for size in sizes:
            for i, feed in enumerate(batches(samples[stage], size)):
                ref = modules[stage](*(torch.from_numpy(feed[t.name]) for t in spec.inputs))
                ref = ref if isinstance(ref, tuple) else (ref,)
                got = backend.run(stage, feed)
                one_by_one = batches(singles[i * size:(i + 1) * size], size)[0]
                for t, r in zip(spec.outputs, ref):
                    per_output[t.name].append(_compare(r.numpy(), got[t.name]))
                    consistency[t.name].append(_compare(one_by_one[t.name], got[t.name]))
        report[stage] = {name: _merge(v) for name, v in per_output.items()}
        batch_vs_single[stage] = {name: _merge(v) for name, v in consistency.items()}
    return {"stages": report, "batch_vs_single": batch_vs_single, "batch_sizes": list(sizes)}


@torch.no_grad()
def end_to_end_parity(bundle: Bundle, model, dataset, precision: str = "fp32", clips: int | None = None) -> dict:
    """The whole runtime pipeline (ONNX Runtime + the NumPy crop) vs the PyTorch model on clips."""
    from ..runtime.recognizer import Recognizer
    rec = Recognizer.load(bundle, backend="ort", precision=precision)
    n = len(dataset) if clips is None else min(clips, len(dataset))
    diffs, agree = [], []
    for i in range(n):
        s = dataset[i]
        logits, _ = model(torch.from_numpy(s.frames)[None], torch.from_numpy(np.asarray(s.audio, np.float32))[None])
        ref = logits.softmax(-1)[0].numpy()
        got = rec.classify_snippets(s.frames, s.audio).scores
        diffs.append(float(np.abs(ref - got).max()))
        agree.append(int(ref.argmax() == got.argmax()))
    return {"clips": n, "max_abs_score": max(diffs), "top1_agreement": float(np.mean(agree))}

