"""Two recognizers on the same snippet stream, every decision compared (e.g. TensorRT vs ONNX Runtime).

A stream of whole clips played back to back, pushed with stride 1, gives a decision at every
window start once T snippets are in, so the device rings' wrap-around is compared too.
"""

from __future__ import annotations

import numpy as np

# how far a TensorRT engine's scores may be from ONNX Runtime's on the same variant, per precision
TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "int8": 5e-2}


def snippet_stream(dataset, clips: int, period: float):
    """(frames, audio, times) of ``clips`` clips of ``dataset`` back to back, a snippet every ``period`` s."""
    samples = [dataset[i] for i in range(clips)]
    frames = [f for s in samples for f in s.frames]
    audio = [a for s in samples for a in s.audio]
    return frames, audio, (np.arange(len(frames)) + 1) * period


def decisions(rec, frames, audio, times) -> list:
    rec.reset()
    out = []
    for f, a, t in zip(frames, audio, times):
        r = rec.push(f, a, float(t))
        if r is not None:
            out.append((r, rec.ring.count % rec.config.num_snippets))
    return out


def many_decisions(rec, streams: list, offsets: list[int]) -> list[list]:
    """Several streams through one Recognizer, as a service's scheduler runs them: at each tick one
    ``encode_many`` for every stream that has a snippet, then one ``decide_many`` for the due windows.
    Stream i (``(frames, audio, times)``) starts at tick ``offsets[i]``; stride 1. Per stream, the
    ``decisions`` list (Result, window start)."""
    windows = [rec.new_window(stride=1) for _ in streams]
    out: list[list] = [[] for _ in streams]
    T = rec.config.num_snippets
    for tick in range(max(o + len(s[0]) for s, o in zip(streams, offsets))):
        active = [i for i, ((frames, _, _), o) in enumerate(zip(streams, offsets)) if 0 <= tick - o < len(frames)]
        rec.encode_many([windows[i].check(*(part[tick - offsets[i]] for part in streams[i])) for i in active])
        due = [i for i in active if windows[i].due]
        for i, r in zip(due, rec.decide_many([windows[i] for i in due])):
            out[i].append((r, windows[i].ring.count % T))
    return out


def compare(got: list, want: list, tolerance: float) -> dict:
    """Agreement of ``got`` with ``want`` (lists from ``decisions``, same stream). A top-1 that differs
    only where ``want``'s two best scores are within ``tolerance`` counts as a tie, not a miss; so do
    glance indices that differ only where ``want``'s k-th and (k+1)-th saliency are within
    ``tolerance`` x the saliency's scale (its largest magnitude, at least 1: saliency is unbounded)."""
    assert len(got) == len(want), (len(got), len(want))
    same, ties, diffs, sal, idx, idx_ties = 0, 0, [], [], [], 0
    scale = max([1.0] + [float(np.abs(b.saliency).max()) for b, _ in want])
    for (a, _), (b, _) in zip(got, want):
        if not np.array_equal(a.indices, b.indices):
            s = np.sort(np.asarray(b.saliency, np.float64).ravel())[::-1]
            k = len(b.indices)
            idx_ties += int(k < len(s) and s[k - 1] - s[k] <= tolerance * scale)
        top2 = np.sort(b.scores)[-2:]
        if a.label == b.label:
            same += 1
        elif top2[1] - top2[0] <= tolerance:
            ties += 1
        diffs.append(float(np.abs(a.scores - b.scores).max()))
        sal.append(float(np.abs(a.saliency - b.saliency).max()))
        idx.append(bool(np.array_equal(a.indices, b.indices)))
    n = len(want)
    return {"decisions": n, "window_starts": sorted({s for _, s in want}),
            "top1_agreement": round(same / n, 4) if n else None, "top1_ties": ties,
            "max_abs_score": max(diffs, default=0.0), "max_abs_saliency": max(sal, default=0.0),
            "indices_agreement": round(float(np.mean(idx)), 4) if n else None, "indices_ties": idx_ties,
            "saliency_scale": scale}
