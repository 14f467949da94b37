"""Accuracy of a precision variant, measured with ONNX Runtime on the CPU, beside FP32."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..bundle import STAGES, Bundle


def stage_errors(bundle: Bundle, precision: str, feeds: dict[str, list[dict]], tensorrt_graph: bool = True) -> dict:
    """Per stage output: max abs error and error relative to the FP32 output's max |value|;
    of TensorRT's graph (as exact fake-quant) or, ``tensorrt_graph=False``, ONNX Runtime's."""
    from ..runtime.ort import OrtBackend
    ref, var = OrtBackend(bundle, "fp32"), OrtBackend(bundle, precision, tensorrt_graph=tensorrt_graph)
    out = {}
    for stage in STAGES:
        stats: dict[str, list] = {}
        for feed in feeds[stage]:
            a, b = ref.run(stage, feed), var.run(stage, feed)
            for name in a:
                if np.issubdtype(a[name].dtype, np.integer):
                    stats.setdefault(name, []).append(float((a[name] == b[name]).mean()))
                else:
                    d = float(np.abs(a[name].astype(np.float64) - b[name]).max())
                    stats.setdefault(name, []).append(d / max(float(np.abs(a[name]).max()), 1e-12))
        out[stage] = {name: (float(np.mean(v)) if name == "indices" else float(np.max(v)))
                      for name, v in stats.items()}
    return out


# name -> (precision, ONNX Runtime options): "int8" is TensorRT's graph (exact fake-quant), "int8-ort"
# the graph ONNX Runtime runs on a CPU with its own integer kernels
ARMS = {"fp32": ("fp32", {}), "fp16": ("fp16", {}), "int8": ("int8", {"tensorrt_graph": True}),
        "int8-ort": ("int8", {})}


def accuracy(bundle: Bundle, precisions: list[str], dataset, clips: int | None = None, progress: bool = True) -> dict:
    """Top-1 of each precision (an ``ARMS`` name) and its agreement with FP32 (same clips, same pipeline)."""
    from ..runtime.recognizer import Recognizer
    recs = {p: Recognizer.load(bundle, backend="ort", precision=ARMS[p][0], **ARMS[p][1]) for p in precisions}
    n = len(dataset) if clips is None else min(clips, len(dataset))
    preds = {p: [] for p in precisions}
    picks = {p: [] for p in precisions}
    labels = []
    for i in tqdm(range(n), desc="accuracy " + "/".join(precisions), disable=not progress, dynamic_ncols=True):
        s = dataset[i]
        labels.append(s.label)
        for p, rec in recs.items():
            r = rec.classify_snippets(s.frames, s.audio)
            preds[p].append(int(np.argmax(r.scores)))
            picks[p].append(tuple(sorted(r.indices.tolist())))
    y = np.array(labels)
    out = {}
    for p in precisions:
        pr = np.array(preds[p])
        out[p] = {"clips": n, "top1": float((pr == y).mean())}
        if p != "fp32" and "fp32" in preds:
            out[p]["agreement_with_fp32"] = float((pr == np.array(preds["fp32"])).mean())
            out[p]["same_snippets_as_fp32"] = float(np.mean([a == b for a, b in zip(picks[p], picks["fp32"])]))
    return out
