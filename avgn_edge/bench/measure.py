"""Everything ``avgn-edge bench`` measures, in one process on one machine, side by side.

Inputs are real: stage inputs captured from the FP32 pipeline on test clips of the
benchmark (never zeros). Ratios come from interleaved A/B timing (see timing.py).
PyTorch is used where it is the thing compared (ORT vs eager) and to build the dense
baseline graph; without it those rows are reported as skipped, with the reason.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from ..bundle import STAGES, load_bundle
from ..deps import gpu_emulated, gpu_stand_in
from ..data.datasets import open_dataset
from ..runtime.ort import OrtBackend
from ..runtime.pipeline import HostPipeline, Timer
from ..runtime.recognizer import Recognizer
from . import jetson
from .presets import drive_config, synth_uri
from .sessions import sweep
from ..precision.calibrate import stack_feeds
from .clips import clip_ratios, filled, int8_kernel_probe
from ..runtime.timing import peak_gflops, percentiles, time_calls

log = logging.getLogger(__name__)
TEST_SEED = 1000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def machine_info() -> dict:
    from ..runtime.plan import machine          # the CPU, its cores, ONNX Runtime: what a tuning plan is tagged with
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    info = {**machine(), "machine": platform.machine(), "vnni": any(f in flags for f in (" avx512_vnni", " avx_vnni")),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    if importlib.util.find_spec("torch"):
        import torch
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def capture_feeds(bundle, clips: int) -> dict[str, list[dict]]:
    """Real stage inputs from the FP32 pipeline on test clips (the calibration capture)."""
    from ..precision.calibrate import capture
    return capture(bundle, {"data": synth_uri(bundle.config, TEST_SEED, clips), "clips": clips,
                            "max_samples_per_stage": 10_000}, data_cfg=drive_config(bundle.config))


def row_key(backend: str, precision: str) -> str:
    """``trt/fp16``; ``trt-emulated/fp16`` on the emulated GPU, so no table can pass it off as a GPU figure."""
    return f"{backend}{'-emulated' if backend == 'trt' and gpu_emulated() else ''}/{precision}"


def stage_latency(backend, feeds, reps: int, T: int) -> dict:
    """One call of each stage on real batch-1 feeds; the glance stages also at batch T (a clip's call,
    rows ``glance_visual@T``)."""
    out = {}
    for stage in STAGES:
        fs = feeds[stage]
        it = iter(range(10**9))
        out[stage] = percentiles(time_calls(lambda: backend.run(stage, fs[next(it) % len(fs)]), reps))
        if stage.startswith("glance"):
            many = stack_feeds(fs, T)
            out[f"{stage}@T"] = percentiles(time_calls(lambda: backend.run(stage, many), max(3, reps // 4)))
    return out


def crop_latency(bundle, clips, reps: int) -> dict:
    """The CPU crop as the host pipeline runs it (the batched reference, NumPy's BLAS on one thread)."""
    from ..kernels.reference import crop_patches_batch, glance_views
    from ..runtime.pipeline import OneBlasThread
    cfg = bundle.config
    s = clips[0]
    one = OneBlasThread()
    idx, cen = np.arange(cfg.top_k)[None], np.full((1, cfg.top_k, 2), 0.5, np.float32)

    def glance():
        with one():
            glance_views(s.frames[:1], cfg.glance_size, cfg.mean, cfg.std)

    def patches():
        with one():
            crop_patches_batch([list(s.frames)], [0], idx, cen, cfg.patch_size / cfg.frame_size, cfg.patch_size,
                               cfg.mean, cfg.std)
    return {"crop_glance": percentiles(time_calls(glance, reps)), "crop_patches": percentiles(time_calls(patches, reps))}


def decision_latency(rec: Recognizer, clip, reps: int) -> dict:
    filled(rec, clip)
    timings: list[dict] = []

    def one():
        t = Timer()
        rec.decide(t)
        timings.append(t.ms)
    total = percentiles(time_calls(one, reps))
    return {"decision": total, "stages": {k: percentiles([t[k] for t in timings]) for k in timings[0]}}


def op_profiles(bundle, feeds: dict, reps: int) -> dict:
    """Per stage (the glance stages also at batch T) and ONNX Runtime precision: time by kind of operator."""
    from ..runtime.ort import session_settings, stage_work
    from .opprofile import op_breakdown
    T = bundle.config.num_snippets
    out = {}
    for stage in STAGES:
        for n in sorted({1, T if stage.startswith("glance") else 1}):
            row = out.setdefault(stage if n == 1 else f"{stage}@T", {})
            for p in [p for p in ("fp32", "int8") if p in bundle.variants]:
                st = session_settings(stage, p, optimize=True, work=stage_work(bundle, stage))
                row[p] = op_breakdown(bundle.stage_path(stage, p, ort=True), st, stack_feeds(feeds[stage], n), reps)
    return out


def live_run(bundle, seconds: float, stride: int, precision: str = "fp32") -> dict:
    from ..data.synth import SynthSpec
    from ..io.synthstream import SynthStream
    from ..live.loop import LiveLoop
    rec = Recognizer.load(bundle, backend="ort", precision=precision, stride=stride)
    cfg = rec.config
    geometry = "any" if "geometry=any" in synth_uri(cfg, 0, 1) else "strict"
    with SynthStream(SynthSpec.for_model(cfg, geometry), gap=(cfg.num_snippets, cfg.num_snippets + 3)) as video:
        s = LiveLoop(rec, video, video.audio(cfg.sample_rate), duration=seconds, stats_every=1e9).run()
    return {"seconds": s["seconds"], "snippets_per_s": s["snippets_per_s"], "decisions": s["decisions"],
            "dropped": s["dropped"], "decision_latency_p50_ms": s["latency_p50_ms"],
            "decision_latency_p95_ms": s["latency_p95_ms"]}


def capacity(bundle, clip, snippets: int, stride: int, precision: str = "fp32") -> dict:
    """Snippets per second the pipeline can take back to back (a decision every ``stride``)."""
    rec = Recognizer.load(bundle, backend="ort", precision=precision, stride=stride)
    t = time.perf_counter()
    for n in range(snippets):
        rec.push(clip.frames[n % len(clip.frames)], clip.audio[n % len(clip.frames)], n + 1.0)
    return {"snippets_per_s": round(snippets / (time.perf_counter() - t), 2), "stride": stride}


def params(bundle) -> dict[str, int]:
    import onnx
    out = {}
    for stage in STAGES:
        m = onnx.load(str(bundle.stage_path(stage)))
        out[stage] = int(sum(np.prod(i.dims) for i in m.graph.initializer))
    return out


def accuracy(checkpoint: str, clips: int) -> dict | None:
    if importlib.util.find_spec("torch") is None:
        return None
    from ..train.checkpoint import load_checkpoint
    from ..train.evaluate import evaluate
    model, _ = load_checkpoint(checkpoint)
    if drive_config(model.cfg) is not model.cfg:
        return None              # not the synthetic benchmark's labels (home: docs/results.md measures it)
    return evaluate(model, open_dataset(synth_uri(model.cfg, TEST_SEED, clips), model.cfg), batch_size=32, progress=False, workers=0)


def paper_gflops() -> dict | None:
    if importlib.util.find_spec("torch") is None:
        return None
    from ..config import get_preset
    from ..model import build_model
    from ..model.flops import stage_gflops
    return stage_gflops(build_model(get_preset("paper")))


def run(bundle_path="synth", checkpoint="synth", fast: bool = False, backends=("ort",), stride: int = 2,
        preset: str | None = None) -> dict:
    """``preset``: time a random-weight bundle of that preset instead (presets.py): speed only, so no
    accuracy, and no many-streams search (the shipped bundle's tables answer that)."""
    if preset:
        from .presets import random_bundle
        bundle_path, checkpoint = random_bundle(preset)
    bundle = load_bundle(bundle_path)
    cfg = bundle.config
    T = cfg.num_snippets
    heavy = preset is not None and cfg.glance_size * cfg.num_snippets > 1024     # paper-size: fewer repetitions
    reps = (10 if heavy else 30) if fast else (40 if heavy else 200)
    clip_reps = (4 if heavy else 12) if fast else (16 if heavy else 60)
    res: dict = {"mode": "fast" if fast else "full", "machine": machine_info(), "bundle": str(bundle.root),
                 "config": {"T": T, "k": cfg.top_k, "frame": cfg.frame_size, "glance": cfg.glance_size,
                            "patch": cfg.patch_size, "snippet_period_s": cfg.snippet_period, "stride": stride}}
    res["load_average"] = {"before": round(os.getloadavg()[0], 2)}     # other jobs on the machine inflate timings
    from ..runtime.plan import load_plan, plan_path                    # `avgn-edge tune`'s plans, where followed
    res["ort_plans"] = {p: str(plan_path(bundle, p)) if load_plan(bundle, p) else None for p in bundle.precisions}
    if preset:
        res["preset"] = preset
        res["random_weights"] = True
    log.info("machine peak (float32 matmul) ...")
    res["machine"]["peak_gflops"] = peak_gflops(1024 if fast else 2048)
    feeds = capture_feeds(bundle, 2 if fast or heavy else 8)
    clips = open_dataset(synth_uri(cfg, TEST_SEED, 2), drive_config(cfg))
    clips = [clips[0], clips[1]]
    res["stages"], res["decision"], res["memory_mb"] = {}, {}, {"start_rss": round(_rss_mb(), 1)}
    if "trt" in backends and gpu_emulated():
        res["emulated_gpu"] = gpu_stand_in()
    for backend_name in backends:
        for p in bundle.precisions:
            key = row_key(backend_name, p)
            log.info("stage latency %s ...", key)
            before = _rss_mb()
            if backend_name == "ort":
                be = OrtBackend(bundle, p, optimize=True)
                rec = Recognizer(bundle, be, HostPipeline(bundle, be), stride)
            else:
                rec = Recognizer.load(bundle, backend=backend_name, precision=p, stride=stride)
                be = rec.backend
            res["memory_mb"][key] = round(_rss_mb() - before, 1)
            res["stages"][key] = stage_latency(be, feeds, reps, T)
            res["decision"][key] = decision_latency(rec, clips[0], reps)
    res["stages"]["numpy/crop"] = crop_latency(bundle, clips, reps)
    log.info("session settings per stage (one factor at a time) ...")
    res["sessions"] = sweep(bundle, feeds, "fp32", reps=5 if fast else (10 if heavy else 20))
    log.info("ONNX Runtime profiles per stage ...")
    res["op_profile"] = op_profiles(bundle, feeds, 3 if heavy or fast else 10)
    log.info("clip-level comparisons (interleaved) ...")
    res["clips"], res["ratios"] = clip_ratios(bundle, checkpoint, clips, clip_reps, stride, tensorrt_graph=not heavy)
    res["int8_kernels"] = int8_kernel_probe(10 if fast else 40)
    log.info("live loop on synth:// ...")
    res["live"] = {}
    for p in [p for p in ("fp32", "int8") if p in bundle.variants]:
        fill = T * cfg.snippet_period                    # no decision before the window is full
        res["live"][p] = live_run(bundle, fill + (10.0 if fast else 60.0), stride, p)
        res["live"][p]["capacity"] = capacity(bundle, clips[0], (8 if heavy else 24) if fast else (40 if heavy else 200),
                                              stride, p)
    gf = bundle.provenance.get("gflops_per_clip")
    res["cost"] = {"gflops_per_clip": gf, "params": params(bundle)}
    if gf:
        work = {s: 2 * gf[s] / (T if s.startswith("glance") else 1) for s in STAGES}     # GFLOP per item
        work.update({f"{s}@T": T * work[s] for s in STAGES if s.startswith("glance")})
        res["cost"]["achieved_gflops"] = {k: {s: round(w / (row[s]["p50_ms"] * 1e-3), 2) for s, w in work.items()}
                                          for k, row in res["stages"].items() if k.startswith("ort/")}
        res["jetson_prediction"] = {"model": jetson.__doc__.strip().split("\n\n")[1].replace("\n", " "),
                                    "bundle": jetson.predict_stages(gf, T, stride)}
        pg = None if fast or preset else paper_gflops()
        if pg:
            res["jetson_prediction"]["paper"] = {"gflops_per_clip": pg, **jetson.predict_stages(pg, 16, 1)}
    if not preset:
        log.info("streams in real time, batched and batch 1 (same run) ...")
        from .streams import batch_scaling, clip_throughput, max_realtime_streams
        res["batch_scaling_ms_per_item"] = batch_scaling(bundle, feeds, (1, 16) if fast else (1, 8, 32, 64))
        res["streams"] = (max_realtime_streams(str(bundle.root), 5.0, start=16, within=4) if fast
                          else max_realtime_streams(str(bundle.root), 20.0))
        res["streams"]["clip_throughput"] = clip_throughput(str(bundle.root), clip_reps)
        log.info("RTSP cameras in real time (real decoding, the local camera farm) ...")
        from .rtsp_streams import max_realtime_cameras
        res["streams"]["rtsp"] = (max_realtime_cameras(str(bundle.root), 5.0, within=4) if fast
                                  else max_realtime_cameras(str(bundle.root), 20.0))
        log.info("accuracy on the test split ...")
        res["accuracy"] = accuracy(checkpoint, 64 if fast else 1000)
    res["accuracy_by_precision"] = {} if preset else {p: v.get("accuracy") for p, v in bundle.variants.items()}
    if "ort" in bundle.variants.get("int8", {}):
        o = bundle.variants["int8"]["ort"]
        res["int8_ort"] = {"forms": o["forms"], "candidate_ms": o["candidate_ms"]}
        if not preset:
            res["accuracy_by_precision"]["int8-ort"] = o.get("accuracy")
    res["memory_mb"]["peak_rss"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["load_average"]["after"] = round(os.getloadavg()[0], 2)
    return res
