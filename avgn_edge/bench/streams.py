"""Many streams in one process: how many synth:// streams run in real time, batched and batch 1,
clip throughput batched vs one snippet per call, and the memory of a long run (the soak).

Real time means, for every stream over the measured span: no snippet dropped (mailbox,
deadline or a late clock tick), p95 decision latency (capture -> result) under 250 ms, and
at least 95% of the snippet clock's rate. The service is the real one (``Service`` without
its HTTP server). Streams are ``synth://?replay=2`` by default: each stream's first 2 s
rendered once and looped from memory (io/replay.py), so the count is the service's, not the
generator's; ``source="synth"`` renders every frame live as before (its cost counts, like a
decoder's would).
"""

from __future__ import annotations

import logging
import resource
import time

import numpy as np

from ..runtime.timing import interleaved, percentiles, ratio
from .threadcpu import named_threads

log = logging.getLogger(__name__)
LATENCY_BUDGET_MS = 250.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


REPLAY_SECONDS = 2.0


def stream_uri(i: int, source: str = "replay") -> str:
    if source not in ("replay", "synth"):
        raise ValueError(f"unknown stream source {source!r} (replay or synth)")
    return f"synth://?seed={i}" + (f"&replay={REPLAY_SECONDS:g}" if source == "replay" else "")


def prerender(n: int, source: str):
    """Render the replay loops of n streams now (the cache keeps them), so that a run's
    streams start at once instead of rendering while the others are measured."""
    if source == "replay":
        from ..io import open_video
        for i in range(n):
            open_video(stream_uri(i, source)).close()


def service_for(bundle: str, n: int, max_batch: int, precision: str = "fp32", source: str = "synth",
                uris: list[str] | None = None):
    """The service on n streams: ``uris`` (RTSP cameras, ...) or else n synth streams of ``source``."""
    from ..serve.config import ApiConfig, CameraConfig, ModelSection, SchedulerConfig, ServeConfig
    from ..serve.service import Service
    uris = uris or [stream_uri(i, source) for i in range(n)]
    cams = {f"s{i:03d}": CameraConfig(source=uri) for i, uri in enumerate(uris)}
    cfg = ServeConfig(api=ApiConfig(max_streams=max(n, ApiConfig().max_streams)),    # the search may pass 64
                      model=ModelSection(bundle=bundle, backend="ort", precision=precision),
                      scheduler=SchedulerConfig(max_batch=max_batch), cameras=cams)
    return Service(cfg)


def realtime_run(bundle: str, n: int, max_batch: int, seconds: float, warmup: float | None = None,
                 source: str = "replay", uris: list[str] | None = None, meter=None, connect: float = 0.0) -> dict:
    """Run n streams for ``connect`` (sources start) + ``warmup`` (the window fills) + ``seconds``;
    judge the measured span. ``uris``: the streams (``source`` then only labels them); ``meter()``,
    called as the span starts, returns a function of the span's seconds whose dict joins the result."""
    if uris is None:
        prerender(n, source)
    svc = service_for(bundle, n, max_batch, source=source, uris=uris)
    with named_threads("avgn-ort"):                 # ONNX Runtime's pool threads inherit the name
        svc.load_model()
    svc.start(api=False)
    period = svc.period
    warmup = (svc.rec.config.num_snippets + 2) * period if warmup is None else warmup
    try:
        time.sleep(connect + warmup)
        before = {st.name: _counts(st) for st in svc.stream_list()}
        finish = meter() if meter else None
        t0 = time.monotonic()
        time.sleep(seconds)
        span = time.monotonic() - t0
        after = {st.name: (_counts(st), list(st.stats.latency_ms)) for st in svc.stream_list()}
        extra = finish(span) if finish else {}
    finally:
        svc.stop()
    drops, rates, lat = [], [], []
    for name, (c, recent) in after.items():
        b = before[name]
        drops.append(c["dropped"] - b["dropped"])
        rates.append((c["snippets"] - b["snippets"]) / span)
        made = c["decisions"] - b["decisions"]
        lat += recent[-made:] if made else []
    p95 = float(np.percentile(lat, 95)) if lat else None
    ok = (sum(drops) == 0 and p95 is not None and p95 < LATENCY_BUDGET_MS and min(rates) >= 0.95 / period)
    return {"streams": n, "max_batch": max_batch, "source": source, "seconds": round(span, 1), "realtime": bool(ok),
            "dropped": int(sum(drops)), "min_snippets_per_s": round(min(rates), 3),
            "latency_p50_ms": None if not lat else round(float(np.percentile(lat, 50)), 1),
            "latency_p95_ms": None if p95 is None else round(p95, 1), **extra}


def _counts(st) -> dict:
    return {"dropped": st.stats.dropped + st.stats.late, "snippets": st.stats.snippets,
            "decisions": st.stats.decisions}


def search_max(trial, modes, start: int, limit: int, bisect: bool = True, within: int = 8):
    """The largest count that passes ``trial(mode, n)`` (a run's dict with "realtime"), per mode:
    doubling from ``start`` until a run fails, then (``bisect``) halving the bracket until it is
    within 1/``within`` of its top. The modes take turns, step by step, so all see the same
    machine. Returns ({mode: count}, [runs])."""
    state = {m: {"lo": 0, "hi": None, "next": start} for m in modes}
    runs = []
    while any(st["next"] is not None for st in state.values()):
        for mode in modes:
            st = state[mode]
            n = st["next"]
            if n is None:
                continue
            r = dict(trial(mode, n), mode=mode)
            runs.append(r)
            log.info("%s %d streams: %s", mode, n, r)
            st["lo" if r["realtime"] else "hi"] = n
            if st["hi"] is None:
                st["next"] = 2 * n if 2 * n <= limit else None
            elif bisect and st["hi"] - st["lo"] > max(1, st["hi"] // within):
                st["next"] = (st["lo"] + st["hi"]) // 2
            else:
                st["next"] = None
    return {m: state[m]["lo"] for m in modes}, runs


def max_realtime_streams(bundle: str, seconds: float, start: int = 8, limit: int = 512, bisect: bool = True,
                         within: int = 8, source: str = "replay") -> dict:
    """The most streams that run in real time, batched and batch 1 (``search_max``)."""
    from ..io import replay
    modes = {"batched": 64, "batch1": 1}
    best, runs = search_max(lambda mode, n: realtime_run(bundle, n, modes[mode], seconds, source=source),
                            modes, start, limit, bisect, within)
    replay.clear_cache()
    return {"max_realtime_streams": best["batched"], "max_realtime_streams_batch1": best["batch1"],
            "ratio": round(best["batched"] / best["batch1"], 2) if best["batch1"] else None,
            "source": source + (f" ({REPLAY_SECONDS:g} s loop)" if source == "replay" else ""),
            "search": {"start": start, "limit": limit, "bisect": bisect, "within": within},
            "seconds_per_run": seconds,
            "runs": sorted(runs, key=lambda x: (x["streams"], x["mode"]))}


def clip_throughput(bundle: str, reps: int) -> dict:
    """Clips per second through ``classify_snippets``: the T glance calls batched into one, vs one
    snippet per call (the same pipeline with every stage's batch limit set to 1), interleaved."""
    from ..data.datasets import open_dataset
    from ..runtime.recognizer import Recognizer
    batched = Recognizer.load(bundle, backend="ort")
    single = Recognizer.load(bundle, backend="ort")
    single.pipeline.limit = {s: 1 for s in single.pipeline.limit}
    from .presets import drive_config
    clip = open_dataset("synth:seed=1000,clips=1", drive_config(batched.config))[0]
    t = interleaved({"batched": lambda: batched.classify_snippets(clip.frames, clip.audio),
                     "one_per_call": lambda: single.classify_snippets(clip.frames, clip.audio)}, reps)
    return {"clip_ms": {k: percentiles(v) for k, v in t.items()},
            "clips_per_s": {k: round(1e3 / float(np.median(v)), 1) for k, v in t.items()},
            "batched_vs_one_per_call": ratio(t["one_per_call"], t["batched"])}


def soak(bundle: str, streams: int, minutes: float, every: float = 30.0, max_batch: int = 64) -> dict:
    """RSS over time with ``streams`` synth:// streams for ``minutes``."""
    svc = service_for(bundle, streams, max_batch)
    svc.start(api=False)
    start, samples = time.monotonic(), []
    try:
        while True:
            el = time.monotonic() - start
            st = svc.stream_list()
            samples.append({"minute": round(el / 60, 2), "rss_mb": round(rss_mb(), 1),
                            "decisions": sum(s.stats.decisions for s in st),
                            "dropped": sum(s.stats.dropped + s.stats.late for s in st)})
            log.info("soak %s", samples[-1])
            if el >= minutes * 60:
                break
            time.sleep(min(every, max(minutes * 60 - el, 0.1)))
    finally:
        svc.stop()
    at5 = next((s for s in samples if s["minute"] >= 5), samples[-1])
    last = samples[-1]
    return {"streams": streams, "minutes": minutes, "samples": samples, "rss_mb_at_5min": at5["rss_mb"],
            "rss_mb_at_end": last["rss_mb"],
            "growth_vs_5min_percent": round(100 * (last["rss_mb"] - at5["rss_mb"]) / at5["rss_mb"], 2)}


def batch_scaling(bundle, feeds: dict, sizes=(1, 8, 32, 64), reps: int = 20) -> dict:
    """Per stage, ms per item at each batch size (ONNX Runtime FP32, the backend's own threading):
    how much a bigger call saves per item, the basis of the manifest's opt/max."""
    from ..bundle import STAGES
    from ..export.parity import batches
    from ..runtime.ort import OrtBackend
    from ..runtime.timing import time_calls
    be = OrtBackend(bundle, "fp32")
    out = {}
    for stage in STAGES:
        items = feeds[stage]
        row = {}
        for b in sizes:
            pool = (items * (b // max(len(items), 1) + 1))[:b]
            feed = batches(pool, b)[0]
            ms = float(np.median(time_calls(lambda: be.run(stage, feed), max(3, reps * 8 // (b + 7)))))
            row[str(b)] = round(ms / b, 4)
        out[stage] = row
    return out
