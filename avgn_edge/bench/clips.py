"""Clip-level comparisons, side by side in one run: AVGN vs dense, ONNX Runtime vs PyTorch eager,
INT8 vs FP32, streaming with the feature ring vs re-encoding; and the INT8 arithmetic probe.

Every ratio comes from interleaved timing (timing.py): A B C A B C ..., so a noisy machine
slows both sides alike.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from ..runtime.recognizer import Recognizer
from ..runtime.timing import interleaved, percentiles, ratio, time_calls


def filled(rec: Recognizer, clip) -> Recognizer:
    rec.reset()
    rec.encode_many([rec.window.check(f, a, i + 1.0) for i, (f, a) in enumerate(zip(clip.frames, clip.audio))])
    return rec


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


def clip_ratios(bundle, checkpoint: str, clips, reps: int, stride: int, tensorrt_graph: bool = True) -> tuple[dict, dict]:
    """Interleaved clip-level timings and their ratios. INT8 is ONNX Runtime's own graph where the
    bundle has one; ``tensorrt_graph``: also time TensorRT's Q/DQ graph on ONNX Runtime's kernels."""
    import onnxruntime as ort

    from ..kernels.reference import glance_views
    cfg = bundle.config
    s = clips[0]
    load = lambda p, **o: Recognizer.load(bundle, backend="ort", precision=p, stride=stride, **o)
    fns, notes = {}, {}
    fp32 = load("fp32")
    fns["avgn_ort_fp32"] = lambda: fp32.classify_snippets(s.frames, s.audio)
    joined = load("fp32", fuse=True)                  # two calls, the glance view in the graph (opt-in)
    fns["avgn_ort_fp32_joined"] = lambda: joined.classify_snippets(s.frames, s.audio)
    int8 = None
    if "int8" in bundle.variants:
        int8 = load("int8")
        fns["avgn_ort_int8"] = lambda: int8.classify_snippets(s.frames, s.audio)
        if tensorrt_graph and int8.backend.graph == "ort":
            qdq = load("int8", tensorrt_graph=True, optimize=True)
            fns["avgn_ort_int8_tensorrt_graph"] = lambda: qdq.classify_snippets(s.frames, s.audio)
    fns["ring_decision"] = streaming_decision(load("fp32"), s)
    if int8 is not None:
        fns["ring_decision_int8"] = streaming_decision(load("int8"), s)
    if importlib.util.find_spec("torch") is None:
        notes["torch"] = "not installed: ort_vs_torch and avgn_vs_dense skipped"
    else:
        import torch
        tmp = tempfile.mkdtemp(prefix="avgn-bench-")
        model, dense_path = export_dense(checkpoint, Path(tmp))
        mean, std = np.asarray(cfg.mean, np.float32)[:, None, None], np.asarray(cfg.std, np.float32)[:, None, None]

        def dense_clip(threads: int):
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.intra_op_num_threads = threads                                     # 0: all cores
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")     # as OrtBackend
            dense = ort.InferenceSession(str(dense_path), so, providers=["CPUExecutionProvider"])

            def one():
                views = glance_views(s.frames, cfg.glance_size, cfg.mean, cfg.std)
                images = ((s.frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0) - mean) / std
                dense.run(None, {"views": views, "images": images, "waves": s.audio})
            return one
        fns["dense_ort_fp32"] = dense_clip(0)
        fns["dense_ort_fp32_1thread"] = dense_clip(1)
    times = interleaved(fns, reps)
    if "dense_ort_fp32" in times:
        # PyTorch eager apart, after the ONNX Runtime forms: interleaved, its OpenMP pool and its
        # allocations ran beside every ONNX Runtime call (dense took 55 ms in such a run, 23 ms alone)
        frames_t, audio_t = torch.from_numpy(s.frames)[None], torch.from_numpy(s.audio)[None]

        def torch_clip():
            with torch.no_grad():
                model(frames_t, audio_t)
        times["avgn_torch_eager"] = time_calls(torch_clip, reps)
        notes["torch"] = "PyTorch eager timed after the interleaved ONNX Runtime forms, not between them"
        # the dense baseline at its best thread count, as AVGN's stages get theirs
        best = min(("dense_ort_fp32", "dense_ort_fp32_1thread"), key=lambda k: np.median(times[k]))
        times["dense_ort_fp32_best"] = times[best]
        notes["dense"] = f"avgn_vs_dense against the faster dense form: {best}"
    table = {k: percentiles(v) for k, v in times.items() if k != "dense_ort_fp32_best"}
    pairs = {"ring_vs_reencode": ("avgn_ort_fp32", "ring_decision"), "avgn_vs_dense": ("dense_ort_fp32_best", "avgn_ort_fp32"),
             "ort_vs_torch": ("avgn_torch_eager", "avgn_ort_fp32"), "int8_vs_fp32": ("avgn_ort_fp32", "avgn_ort_int8"),
             "int8_tensorrt_graph_vs_fp32": ("avgn_ort_fp32", "avgn_ort_int8_tensorrt_graph"),
             "ring_int8_vs_fp32": ("ring_decision", "ring_decision_int8"),
             "joined_vs_staged": ("avgn_ort_fp32", "avgn_ort_fp32_joined")}
    r = {k: ratio(times[a], times[b]) for k, (a, b) in pairs.items() if a in times and b in times}
    return {"clip_ms": table, "notes": notes}, r


def streaming_decision(rec: Recognizer, s):
    """A call that pushes ``stride`` new snippets through the (filled) ring, the last one deciding."""
    filled(rec, s)
    T = rec.config.num_snippets
    counter = iter(range(10**9))

    def one():
        r = None
        while r is None:
            n = next(counter)
            r = rec.push(s.frames[n % T], s.audio[n % T], T + 1.0 + n)
    return one


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
