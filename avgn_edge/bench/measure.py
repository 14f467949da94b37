"""Everything ``avgn-edge bench`` measures, in one process on one machine, side by side.

Inputs are real: stage inputs captured from the FP32 pipeline on test clips of the
benchmark (never zeros). Ratios come from interleaved A/B timing (see timing.py).
PyTorch is used where it is the thing compared (ORT vs eager) and to build the dense
baseline graph; without it those rows are reported as skipped, with the reason.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from ..bundle import STAGES, load_bundle
from ..data.datasets import open_dataset
from ..runtime.ort import OrtBackend
from ..runtime.pipeline import HostPipeline, Timer
from ..runtime.recognizer import Recognizer
from . import jetson
from .timing import interleaved, peak_gflops, percentiles, ratio, time_calls

log = logging.getLogger(__name__)
TEST_DATA = "synth:seed=1000,clips={n}"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def machine_info() -> dict:
    import onnxruntime as ort
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((l.split(":", 1)[1].strip() for l in flags.splitlines() if l.startswith("model name")), platform.processor())
    info = {"cpu": model, "cores": len(__import__("os").sched_getaffinity(0)), "machine": platform.machine(),
            "vnni": any(f in flags for f in (" avx512_vnni", " avx_vnni")), "onnxruntime": ort.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    if importlib.util.find_spec("torch"):
        import torch
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def capture_feeds(bundle, clips: int) -> dict[str, list[dict]]:
    """Real stage inputs from the FP32 pipeline on test clips (the calibration capture)."""
    from ..precision.calibrate import capture
    return capture(bundle, {"data": TEST_DATA.format(n=clips), "clips": clips, "max_samples_per_stage": 10_000})


def row_key(backend: str, precision: str) -> str:
    """``trt/fp16``; ``trt-emulated/fp16`` on the emulated GPU, so no table can pass it off as a GPU figure."""
    from .. import emulator
    return f"{backend}{'-emulated' if backend == 'trt' and emulator.active() else ''}/{precision}"


def stage_latency(backend, feeds, reps: int) -> dict:
    out = {}
    for stage in STAGES:
        fs = feeds[stage]
        it = iter(range(10**9))
        out[stage] = percentiles(time_calls(lambda: backend.run(stage, fs[next(it) % len(fs)]), reps))
    return out


def crop_latency(bundle, clips, reps: int) -> dict:
    from ..kernels.reference import crop_patches, glance_views
    cfg = bundle.config
    s = clips[0]
    idx, cen = np.arange(cfg.top_k), np.full((cfg.top_k, 2), 0.5, np.float32)
    return {"crop_glance": percentiles(time_calls(lambda: glance_views(s.frames[:1], cfg.glance_size, cfg.mean,
                                                                       cfg.std), reps)),
            "crop_patches": percentiles(time_calls(lambda: crop_patches(s.frames, idx, cen, cfg.patch_size / cfg.frame_size,
                                                                        cfg.patch_size, cfg.mean, cfg.std), reps))}


def filled(rec: Recognizer, clip) -> Recognizer:
    rec.reset()
    rec.encode_many([rec.window.check(f, a, i + 1.0) for i, (f, a) in enumerate(zip(clip.frames, clip.audio))])
    return rec


def decision_latency(rec: Recognizer, clip, reps: int) -> dict:
    filled(rec, clip)
    timings: list[dict] = []

    def one():
        t = Timer()
        rec.decide(t)
        timings.append(t.ms)
    total = percentiles(time_calls(one, reps))
    return {"decision": total, "stages": {k: percentiles([t[k] for t in timings]) for k in timings[0]}}


def export_dense(checkpoint: str, folder: Path):
    """The dense baseline (local encoder on all T full frames, with glance, audio and its head)
    as one ONNX graph, for timing beside AVGN's stages."""
    import torch

    from ..train.checkpoint import load_checkpoint
    model, _ = load_checkpoint(checkpoint)
    cfg = model.cfg

    class Dense(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, views, images, waves):
            gmap, gvec = self.m.encode_glance(views[None])
            avec = self.m.encode_audio(waves[None])
            return self.m.dense_logits(gvec, avec, self.m.dense_maps(images[None]))[0].softmax(-1)

    T, S, g = cfg.num_snippets, cfg.frame_size, cfg.glance_size
    args = (torch.zeros(T, 3, g, g), torch.zeros(T, 3, S, S), torch.zeros(T, cfg.audio_samples))
    path = folder / "dense.onnx"
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad():
        torch.onnx.export(Dense().eval(), args, str(path), dynamo=False, opset_version=17,
                          input_names=["views", "images", "waves"], output_names=["scores"])
    return model, path


def clip_ratios(bundle, checkpoint: str, clips, reps: int, stride: int) -> tuple[dict, dict]:
    """Interleaved clip-level timings and the four ratios."""
    import onnxruntime as ort

    from ..kernels.reference import glance_views
    cfg = bundle.config
    s = clips[0]
    fp32 = Recognizer.load(bundle, backend="ort", precision="fp32", stride=stride)
    fns = {"avgn_ort_fp32": lambda: fp32.classify_snippets(s.frames, s.audio)}
    notes = {}
    if "int8" in bundle.variants:
        int8 = Recognizer.load(bundle, backend="ort", precision="int8", optimize=True)
        fns["avgn_ort_int8"] = lambda: int8.classify_snippets(s.frames, s.audio)
    ring = Recognizer.load(bundle, backend="ort", precision="fp32", stride=stride)
    filled(ring, s)
    counter = iter(range(10**9))

    def streaming_decision():                # `stride` new snippets through the ring, then a decision
        r = None
        while r is None:
            n = next(counter)
            r = ring.push(s.frames[n % len(s.frames)], s.audio[n % len(s.frames)], cfg.num_snippets + 1.0 + n)
    fns["ring_decision"] = streaming_decision
    if importlib.util.find_spec("torch") is None:
        notes["torch"] = "not installed: ort_vs_torch and avgn_vs_dense skipped"
    else:
        import torch
        tmp = tempfile.mkdtemp(prefix="avgn-bench-")
        model, dense_path = export_dense(checkpoint, Path(tmp))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")     # as OrtBackend
        dense = ort.InferenceSession(str(dense_path), so, providers=["CPUExecutionProvider"])
        mean, std = np.asarray(cfg.mean, np.float32)[:, None, None], np.asarray(cfg.std, np.float32)[:, None, None]

        def dense_clip():
            views = glance_views(s.frames, cfg.glance_size, cfg.mean, cfg.std)
            images = ((s.frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0) - mean) / std
            dense.run(None, {"views": views, "images": images, "waves": s.audio})
        frames_t, audio_t = torch.from_numpy(s.frames)[None], torch.from_numpy(s.audio)[None]

        def torch_clip():
            with torch.no_grad():
                model(frames_t, audio_t)
        fns["dense_ort_fp32"] = dense_clip
        fns["avgn_torch_eager"] = torch_clip
    times = interleaved(fns, reps)
    table = {k: percentiles(v) for k, v in times.items()}
    r = {"ring_vs_reencode": ratio(times["avgn_ort_fp32"], times["ring_decision"])}
    if "dense_ort_fp32" in times:
        r["avgn_vs_dense"] = ratio(times["dense_ort_fp32"], times["avgn_ort_fp32"])
        r["ort_vs_torch"] = ratio(times["avgn_torch_eager"], times["avgn_ort_fp32"])
    if "avgn_ort_int8" in times:
        r["int8_vs_fp32"] = ratio(times["avgn_ort_fp32"], times["avgn_ort_int8"])
    return {"clip_ms": table, "notes": notes}, r


def int8_kernel_probe(reps: int = 20) -> dict:
    """Is INT8 arithmetic itself faster here? One 512x512 product as FP32 MatMul and as ONNX
    Runtime's MatMulInteger with signed activations (s8s8: the symmetric format TensorRT wants,
    which our Q/DQ graphs use) and unsigned ones (u8s8: ONNX Runtime's x86 fast path)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper
    n = 512
    cases = {"fp32": ("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, np.float32, np.float32),
             "int8_s8s8": ("MatMulInteger", TensorProto.INT8, TensorProto.INT8, TensorProto.INT32, np.int8, np.int8),
             "int8_u8s8": ("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, np.uint8, np.int8)}
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    out = {}
    for name, (op, ta, tb, ty, da, db) in cases.items():
        g = helper.make_graph([helper.make_node(op, ["a", "b"], ["y"])], name,
                              [helper.make_tensor_value_info("a", ta, [n, n]), helper.make_tensor_value_info("b", tb, [n, n])],
                              [helper.make_tensor_value_info("y", ty, [n, n])])
        sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                                    so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {"a": rng.integers(0, 100, (n, n)).astype(da), "b": rng.integers(0, 100, (n, n)).astype(db)}
        out[name] = percentiles(time_calls(lambda: sess.run(None, feeds), reps))
    for name in ("int8_s8s8", "int8_u8s8"):
        out[name]["speedup_vs_fp32"] = round(out["fp32"]["p50_ms"] / out[name]["p50_ms"], 2)
    return out


def live_run(bundle, seconds: float, stride: int) -> dict:
    from ..data.synth import SynthSpec
    from ..io.synthstream import SynthStream
    from ..live.loop import LiveLoop
    rec = Recognizer.load(bundle, backend="ort", stride=stride)
    cfg = rec.config
    with SynthStream(SynthSpec.for_model(cfg)) as video:
        s = LiveLoop(rec, video, video.audio(cfg.sample_rate), duration=seconds, stats_every=1e9).run()
    return {"seconds": s["seconds"], "snippets_per_s": s["snippets_per_s"], "decisions": s["decisions"],
            "dropped": s["dropped"], "decision_latency_p50_ms": s["latency_p50_ms"],
            "decision_latency_p95_ms": s["latency_p95_ms"]}


def capacity(bundle, clip, snippets: int, stride: int) -> dict:
    """Snippets per second the pipeline can take back to back (a decision every ``stride``)."""
    rec = Recognizer.load(bundle, backend="ort", stride=stride)
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
    return evaluate(model, open_dataset(TEST_DATA.format(n=clips), model.cfg), batch_size=32, progress=False, workers=0)


def paper_gflops() -> dict | None:
    if importlib.util.find_spec("torch") is None:
        return None
    from ..config import get_preset
    from ..model import build_model
    from ..model.flops import stage_gflops
    return stage_gflops(build_model(get_preset("paper")))


def run(bundle_path="synth", checkpoint="synth", fast: bool = False, backends=("ort",), stride: int = 2) -> dict:
    bundle = load_bundle(bundle_path)
    cfg = bundle.config
    reps = 30 if fast else 200
    clip_reps = 12 if fast else 60
    res: dict = {"mode": "fast" if fast else "full", "machine": machine_info(), "bundle": str(bundle.root),
                 "config": {"T": cfg.num_snippets, "k": cfg.top_k, "frame": cfg.frame_size, "patch": cfg.patch_size,
                            "snippet_period_s": cfg.snippet_period, "stride": stride}}
    log.info("machine peak (float32 matmul) ...")
    res["machine"]["peak_gflops"] = peak_gflops(1024 if fast else 2048)
    feeds = capture_feeds(bundle, 2 if fast else 8)
    clips = open_dataset(TEST_DATA.format(n=2), cfg)
    clips = [clips[0], clips[1]]
    res["stages"], res["decision"], res["memory_mb"] = {}, {}, {"start_rss": round(_rss_mb(), 1)}
    from .. import emulator
    if "trt" in backends and emulator.active():
        res["emulated_gpu"] = emulator.describe()
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
            res["stages"][key] = stage_latency(be, feeds, reps)
            res["decision"][key] = decision_latency(rec, clips[0], reps)
    res["stages"]["numpy/crop"] = crop_latency(bundle, clips, reps)
    log.info("clip-level comparisons (interleaved) ...")
    res["clips"], res["ratios"] = clip_ratios(bundle, checkpoint, clips, clip_reps, stride)
    res["int8_kernels"] = int8_kernel_probe(10 if fast else 40)
    log.info("live loop on synth:// ...")
    res["live"] = live_run(bundle, 12.0 if fast else 60.0, stride)
    res["live"]["capacity"] = capacity(bundle, clips[0], 24 if fast else 200, stride)
    gf = bundle.provenance.get("gflops_per_clip")
    res["cost"] = {"gflops_per_clip": gf, "params": params(bundle)}
    if gf:
        T = cfg.num_snippets
        per_call = {s: gf[s] / (T if s.startswith("glance") else 1) for s in STAGES}
        res["cost"]["achieved_gflops"] = {
            s: round(2 * per_call[s] / (res["stages"]["ort/fp32"][s]["p50_ms"] * 1e-3), 2) for s in STAGES}
        res["jetson_prediction"] = {"model": jetson.__doc__.strip().split("\n\n")[1].replace("\n", " "),
                                    "synth": jetson.predict_stages(gf, T, stride)}
        pg = None if fast else paper_gflops()
        if pg:
            res["jetson_prediction"]["paper"] = {"gflops_per_clip": pg, **jetson.predict_stages(pg, 16, 1)}
    log.info("streams in real time, batched and batch 1 (same run) ...")
    from .streams import batch_scaling, clip_throughput, max_realtime_streams
    res["batch_scaling_ms_per_item"] = batch_scaling(bundle, feeds, (1, 16) if fast else (1, 8, 32, 64))
    res["streams"] = (max_realtime_streams(str(bundle.root), 6.0, start=8, limit=16, bisect=False) if fast
                      else max_realtime_streams(str(bundle.root), 20.0))
    res["streams"]["clip_throughput"] = clip_throughput(str(bundle.root), clip_reps)
    log.info("accuracy on the test split ...")
    res["accuracy"] = accuracy(checkpoint, 64 if fast else 1000)
    res["accuracy_by_precision"] = {p: v.get("accuracy") for p, v in bundle.variants.items()}
    res["memory_mb"]["peak_rss"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return res
