"""ONNX Runtime's rewritten stage graphs, written into the bundle and chosen per stage by timing.

A rewrite is a graph TensorRT never sees: it computes what the stage graph computes, in a form
ONNX Runtime's CPU kernels run faster (today the folded STFT of the log-mel front end,
logmel_fold.py). For every precision of the bundle, each rewrite is applied to the graph ONNX
Runtime runs (``Bundle.stage_path(stage, p, ort=True)``), checked against it on real-ish audio and
on the caller's feeds, timed beside it (interleaved, at batch 1 and at the batch a clip sends) and
kept only where it is within ``MAX_ERROR`` and faster at both. The manifest records it in the
variant's ``ort`` entry (the one ONNX Runtime reads; TensorRT, Triton and the engine cache read
``files``):

    variants.<p>.ort.files.glance_audio = "folded/fp32.glance_audio.onnx"
    variants.<p>.ort.rewrites.glance_audio = {rewrite, from, file, error, max_error, ms, chosen}

``avgn-edge export`` runs it for FP32, ``avgn-edge quantize`` again after adding a variant, and
``avgn-edge ort-rewrite BUNDLE`` on an existing bundle. Needs onnx (the export extra); the runtime
only reads the files.
"""

from __future__ import annotations

import logging

import numpy as np

from .logmel_fold import FoldError, fold_log_mel

log = logging.getLogger(__name__)

FOLDER = "folded"
# stage -> (name, rewrite of an onnx.ModelProto raising FoldError where it does not apply)
REWRITES = {"glance_audio": ("folded-stft", fold_log_mel)}
# Largest error allowed, relative to the source graph's max |output| over the checked feeds: the bar
# export holds ONNX Runtime's graphs to against PyTorch (parity max_rel < 1e-4). The fold only reorders
# float32 sums: measured 3.5e-7 (synth), 5.9e-7 (tiny) and 2.1e-5 (home, whose Lite0 trunk amplifies a
# loud pure tone's quietest mel band, at float32's floor: 7.5e-4 apart in the log domain) on
# probe_waves. A filterbank one bin off gives 0.09-0.21, FP16's audio stage 2.7e-4 (synth) to 8.8e-3
# (home), INT8's 2e-2.
MAX_ERROR = 1e-4


def probe_waves(samples: int, sample_rate: int, count: int = 8, seed: int = 0) -> np.ndarray:
    """[count, samples] real-ish audio: tones with noise, loud and quiet, silence, a tone cut by
    silence, clipping-level noise (what a microphone gives, and what the log floor must survive)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    tone = lambda f: np.sin(2 * np.pi * f * t)
    half = (t < t[-1] / 2).astype(np.float64)
    waves = [0.5 * tone(440) + 0.01 * rng.standard_normal(samples),        # loud tone, little noise
             1e-4 * rng.standard_normal(samples),                           # near silence
             np.zeros(samples),                                             # digital silence
             0.9 * tone(3000) * half,                                       # tone, then silence
             1e-3 * tone(1000) + 1e-4 * rng.standard_normal(samples),       # quiet tone
             rng.uniform(-1, 1, samples),                                   # full-scale noise
             0.3 * np.sign(tone(50)),                                       # square wave (hum, harmonics)
             0.2 * tone(200 + 3000 * t / t[-1])]                            # sweep
    return np.stack([waves[i % len(waves)] for i in range(count)]).astype(np.float32)


def add_ort_rewrites(bundle, feeds: dict[str, list[dict]] | None = None, budget_s: float = 2.0) -> dict:
    """Every rewrite for every precision of ``bundle``, checked, timed and recorded (the manifest is
    not saved: the caller does). ``feeds``: extra real inputs per stage (quantize's held-out ones).
    Returns {precision: {stage: record}}."""
    _forget_earlier(bundle)
    out, by_source = {}, {}
    for precision in bundle.precisions:
        variant = bundle.variants[precision]
        entry = variant.setdefault("ort", {"files": dict(variant["files"])})
        entry["rewrites"] = {}
        for stage, (name, rewrite) in REWRITES.items():
            source = entry["files"][stage]
            if source not in by_source:            # INT8 may run FP32's graph of a stage: measured once
                by_source[source] = _rewrite(bundle, stage, precision, source, name, rewrite, feeds, budget_s)
            record = by_source[source]
            if record["chosen"]:
                entry["files"][stage] = record["file"]
            entry["rewrites"][stage] = record
        entry["rewrites_chosen_by"] = (f"within {MAX_ERROR} relative error of the graph it rewrites and faster at "
                                       "batch 1 and at a clip's batch (p50, interleaved, as OrtBackend sets up the "
                                       "stage) on the machine that made the bundle")
        out[precision] = entry["rewrites"]
    for rel in {r["file"] for r in by_source.values() if r["chosen"]}:
        bundle.add_file(rel)
    used = {f for v in bundle.variants.values() for f in v.get("ort", {}).get("files", {}).values()}
    for path in (bundle.root / FOLDER).glob("*.onnx") if (bundle.root / FOLDER).is_dir() else ():
        if f"{FOLDER}/{path.name}" not in used:
            path.unlink()
    return out


def _rewrite(bundle, stage: str, precision: str, source: str, name: str, rewrite, feeds, budget_s: float) -> dict:
    """One rewrite of one source graph: written, checked, timed; its manifest record."""
    from ..deps import require
    onnx = require("onnx")
    record = {"rewrite": name, "from": source, "chosen": False}
    try:
        model = rewrite(onnx.load(str(bundle.root / source)))
    except FoldError as exc:
        return dict(record, not_applicable=str(exc))
    cfg = bundle.config
    rel = f"{FOLDER}/{source.replace('/', '.')}"
    (bundle.root / FOLDER).mkdir(exist_ok=True)
    onnx.save(model, str(bundle.root / rel))
    checks = [{"wave": probe_waves(cfg.audio_samples, cfg.sample_rate, cfg.num_snippets)}, *(feeds or {}).get(stage, [])]
    record.update(file=rel, max_error=MAX_ERROR, error=graph_error(bundle.root / source, bundle.root / rel, checks))
    record["ms"] = time_forms(bundle, stage, precision, {"from": bundle.root / source, "rewrite": bundle.root / rel},
                              checks[0], budget_s)
    faster = all(record["ms"]["rewrite"][n] < record["ms"]["from"][n] for n in record["ms"]["from"])
    record["chosen"] = record["error"] <= MAX_ERROR and faster
    log.info("ort rewrite %s of %s: error %.2e, %s: %s", name, source, record["error"], record["ms"],
             "chosen" if record["chosen"] else "not chosen")
    return record


def graph_error(reference, candidate, feeds: list[dict]) -> float:
    """Largest |candidate - reference| over ``feeds``, relative to the reference's max |output|."""
    from ..runtime.ort import open_session, session_settings
    ref, cand = (open_session(p, session_settings("", "fp32", threads=1, optimize=True)) for p in (reference, candidate))
    worst = 0.0
    for feed in feeds:
        for a, b in zip(ref.run(None, feed), cand.run(None, feed)):
            scale = max(float(np.abs(a).max()), 1e-12)
            worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / scale)
    return worst


def time_forms(bundle, stage: str, precision: str, paths: dict, feed: dict, budget_s: float) -> dict:
    """p50 ms per call of each graph at batch 1 and at the clip's batch (the feed's), interleaved,
    each session set up as OrtBackend sets up the stage."""
    from ..runtime.ort import open_session, session_settings, stage_work
    from ..runtime.timing import interleaved, percentiles, time_calls
    st = session_settings(stage, precision, optimize=True, work=stage_work(bundle, stage))   # ONNX Runtime's graph
    sessions = {name: open_session(path, st) for name, path in paths.items()}
    batch = len(next(iter(feed.values())))
    runs = {(name, n): (lambda s, f: lambda: s.run(None, f))(sess, {k: v[:n] for k, v in feed.items()})
            for name, sess in sessions.items() for n in sorted({1, batch})}
    once = sum(min(time_calls(fn, 2, warmup=1)) for fn in runs.values()) / 1e3
    reps = int(np.clip(budget_s / max(once, 1e-6), 10, 400))
    times = interleaved(runs, reps)
    return {name: {str(n): percentiles(times[(name, n)])["p50_ms"] for (nm, n) in runs if nm == name}
            for name in paths}


def _forget_earlier(bundle):
    """An earlier run's rewrites: each ``ort`` entry points back at its sources, the files leave the
    manifest (and the disk at the end, unless chosen again); an ``ort`` entry that held nothing but
    rewrites goes."""
    for precision in list(bundle.variants):
        entry = bundle.variants[precision].get("ort")
        if not entry:
            continue
        for stage, record in entry.pop("rewrites", {}).items():
            entry["files"][stage] = record["from"]
        entry.pop("rewrites_chosen_by", None)
        if set(entry) == {"files"} and entry["files"] == bundle.variants[precision]["files"]:
            del bundle.variants[precision]["ort"]
    for rel in [r for r in bundle.files if r.startswith(f"{FOLDER}/")]:
        del bundle.files[rel]

