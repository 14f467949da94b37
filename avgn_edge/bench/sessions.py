"""ONNX Runtime session settings per stage, measured: the runtime's choice beside each alternative.

One factor at a time from what ``session_settings`` chooses (intra-op threads, execution mode,
graph optimisation level, memory arena; and all cores with spinning pool threads), each alternative timed interleaved with the choice on
the same real feeds, at the batch a clip sends a stage (T snippets for the glance stages) and
at batch 1 (a stream's snippet). A ratio above 1 means the alternative is slower.
"""

from __future__ import annotations

import os

import numpy as np

from ..bundle import STAGES
from ..precision.calibrate import stack_feeds
from ..runtime.ort import open_session, session_settings, stage_work
from ..runtime.timing import interleaved

LEVELS = ("basic", "extended", "all")


def alternatives(chosen: dict, cores: int) -> dict[str, dict]:
    out = {}
    for threads in sorted({1, cores} - {chosen["threads"] or cores}):
        out[f"threads={threads}"] = dict(chosen, threads=threads)
    out["execution=parallel"] = dict(chosen, execution="parallel")
    for level in LEVELS:
        if level != chosen.get("level", "all"):
            out[f"level={level}"] = dict(chosen, level=level)
    out["arena=off"] = dict(chosen, arena=False)
    for threads in sorted({chosen["threads"] or cores, cores} - {1}):      # the pool's threads spin between ops
        out[f"threads={threads},spinning=on"] = dict(chosen, threads=threads, spinning=True)
    return out


def sweep(bundle, feeds: dict[str, list[dict]], precision: str = "fp32", reps: int = 20) -> dict:
    """Per stage and batch: the chosen settings' p50 ms and each alternative's ratio to it."""
    cores = len(os.sched_getaffinity(0))
    T = bundle.config.num_snippets
    out = {}
    for stage in STAGES:
        chosen = session_settings(stage, precision, work=stage_work(bundle, stage))
        path = bundle.stage_path(stage, precision, ort=True)
        sessions = {"chosen": open_session(path, chosen)}
        sessions.update({k: open_session(path, st) for k, st in alternatives(chosen, cores).items()})
        out[stage] = {"chosen": {k: v for k, v in chosen.items() if k != "disabled_optimizers"}}
        for batch in sorted({1, T if stage.startswith("glance") else 1}):
            feed = stack_feeds(feeds[stage], batch)
            t = interleaved({k: (lambda s: lambda: s.run(None, feed))(s) for k, s in sessions.items()}, reps)
            base = float(np.median(t["chosen"]))
            out[stage][f"batch{batch}"] = {"chosen_ms": round(base, 3), **{
                k: round(float(np.median(v)) / base, 3) for k, v in t.items() if k != "chosen"}}
    return out
