"""Measure each stage's best ONNX Runtime thread count and call size on this machine (``avgn-edge tune``).

Per stage, one session per thread count (one thread, all cores), timed at batch sizes 1, 2, 4, ...
on real stage inputs (the calibration capture), every (threads, batch) pair interleaved. The
plan keeps, per stage, one thread or all cores, or both with the call size at which all cores take
over (``choose``), and caps the call size at its best batch only where a bigger batch was measurably
slower per item (more than ``CAP_MARGIN``), so a stage that keeps gaining is never split. runtime/plan.py stores it.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..bundle import STAGES
from ..precision.calibrate import stack_feeds
from ..runtime.ort import default_optimize, open_session, session_settings, stage_work
from ..runtime.plan import save_plan
from ..runtime.timing import interleaved, time_calls

log = logging.getLogger(__name__)
CAP_MARGIN = 1.10        # per-item time at the biggest batch vs the best: above it, calls are capped
PREFER_MARGIN = 1.05    # all cores must beat one thread's best time per item by this much
CALL_BUDGET_MS = 1500.0  # a batch whose call takes longer ends that stage's growth (paper's glance at 64)


def batch_sizes(limit: int) -> list[int]:
    sizes, b = [], 1
    while b <= limit:
        sizes.append(b)
        b *= 2
    return sizes


def measure_stage(bundle, stage: str, precision: str, feeds: list[dict], reps: int, max_batch: int) -> dict:
    """{threads: {batch: ms per item}} for one stage: every (threads, batch) pair called once per
    round, ``reps`` rounds, so a burst of load on a shared machine hits every pair alike."""
    cores = len(os.sched_getaffinity(0))
    path = bundle.stage_path(stage, precision, ort=True)        # the graph OrtBackend runs, set up as it does
    graph = "ort" if "ort" in bundle.variants[precision] else "tensorrt"
    st = {t: session_settings(stage, precision, t, default_optimize(precision, graph), stage_work(bundle, stage))
          for t in sorted({1, cores})}
    sessions = {t: open_session(path, s) for t, s in st.items()}
    calls = {}
    for b in batch_sizes(min(max_batch, bundle.stages[stage].batch.max)):
        feed = stack_feeds(feeds, b)
        for t, s in sessions.items():
            calls[t, b] = (lambda s, feed: lambda: s.run(None, feed))(s, feed)
        if time_calls(calls[1, b], 1, warmup=1)[0] > CALL_BUDGET_MS:          # bigger calls would take the run's time: stop here
            break
    ms = interleaved(calls, reps, warmup=1)
    out: dict[int, dict[int, float]] = {t: {} for t in sessions}
    for (t, b), m in ms.items():
        out[t][b] = round(float(np.median(m)) / b, 4)
    return out


def choose(per_item: dict[int, dict[int, float]]) -> dict:
    """The plan entry of one stage from its {threads: {batch: ms per item}}. All cores where they
    beat one thread by ``PREFER_MARGIN`` at every batch; one thread where they never do; else one
    thread with a second, all-cores session for calls from the smallest batch at which all cores
    win from there on (synth's glance: one thread for a stream's snippet, all cores for 64
    streams' snippets at once). The call size is capped where it measurably stops paying."""
    one, many = per_item[min(per_item)], per_item[max(per_item)]
    sizes = sorted(one)
    wins = [b for b in sizes if len(per_item) > 1 and many[b] * PREFER_MARGIN < one[b]]
    from_b = next((b for b in sizes if all(c in wins for c in sizes if c >= b)), None)
    if from_b == sizes[0]:
        entry, best = {"threads": 0}, many
    else:
        entry = {"threads": 1, **({"all_cores_from": from_b} if from_b else {})}
        best = {b: (many if from_b and b >= from_b else one)[b] for b in sizes}
    top = min(best, key=best.get)
    if best[sizes[-1]] > CAP_MARGIN * best[top]:
        entry["max_call"] = top
    return entry


def tune(bundle, precision: str = "fp32", reps: int = 20, max_batch: int = 64, clips: int = 2) -> tuple[dict, dict, str]:
    """(plan, measurements, where the plan was written) for one precision of a bundle."""
    from .measure import capture_feeds
    feeds = capture_feeds(bundle, clips)
    measured, plan = {}, {}
    for stage in STAGES:
        log.info("tune %s %s ...", precision, stage)
        per_item = measure_stage(bundle, stage, precision, feeds[stage], reps, max_batch)
        measured[stage] = {str(t): {str(b): ms for b, ms in row.items()} for t, row in per_item.items()}
        plan[stage] = choose(per_item)
    measured["load_average"] = round(os.getloadavg()[0], 2)
    return plan, measured, str(save_plan(bundle, precision, plan, measured))
