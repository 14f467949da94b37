"""Parity of exported graphs against PyTorch, on real benchmark inputs (never zeros)."""

from __future__ import annotations

import numpy as np
import torch

from ..bundle import STAGES, Bundle
from ..model.avgn import take
from ..model.views import crop_patches


@torch.no_grad()
def collect_stage_inputs(model, dataset, clips: int | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """Run the PyTorch model over clips and record every stage's inputs, as the runtime feeds them."""
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
        out["decide"].append({"gmaps": np_(gmap[0]), "gvecs": np_(gvec[0]), "avecs": np_(avec[0])})
        out["focus_local"].append({"patches": np_(patches)})
        out["head"].append({"gvecs": np_(gvec[0]), "avecs": np_(avec[0]), "lvecs": np_(lvec),
                            "saliency": np_(d.saliency[0]), "indices": d.indices[0].numpy().astype(np.int32)})
    return out


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
def stage_parity(bundle: Bundle, modules: dict, samples: dict, precision: str = "fp32") -> dict:
    """Per stage and output: max abs and relative error (vs max |reference|) of ONNX Runtime vs PyTorch."""
    from ..runtime.ort import OrtBackend
    backend = OrtBackend(bundle, precision)
    report = {}
    for stage in STAGES:
        spec = bundle.stages[stage]
        per_output: dict[str, list] = {t.name: [] for t in spec.outputs}
        for feed in samples[stage]:
            ref = modules[stage](*(torch.from_numpy(feed[t.name]) for t in spec.inputs))
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = backend.run(stage, feed)
            for t, r in zip(spec.outputs, ref):
                per_output[t.name].append(_compare(r.numpy(), got[t.name]))
        report[stage] = {name: _merge(v) for name, v in per_output.items()}
    return report


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

