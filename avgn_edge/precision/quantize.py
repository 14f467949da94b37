"""``avgn-edge quantize``: add an FP16 or INT8 variant to a bundle, with its measured accuracy.

    bundle = add_variant("out/bundle", "int8")          # calibration/synth.json by default
    bundle = add_variant("out/bundle", "int8", backend="ort")   # only ONNX Runtime's CPU graph
"""

from __future__ import annotations

import logging
import shutil

from ..bundle import STAGES, load_bundle
from ..export.ort_rewrites import add_ort_rewrites
from ..errors import InputError
from .accuracy import accuracy, stage_errors
from .calibrate import capture, load_recipe
from .checks import qdq_problems
from .fp16 import KEEP_FP32, convert_fp16
from .int8 import excluded_nodes, quantize_int8
from .int8_ort import ort_graph

log = logging.getLogger(__name__)
TARGET_POINTS = {"fp16": 0.2, "int8": 1.0}


def add_variant(bundle_path, precision: str, calib: str | None = None,
                eval_data: str = "synth:seed=1000,clips=1000", eval_clips: int | None = None,
                progress: bool = True, backend: str = "all", reduce_range: bool = False):
    """``backend``: for INT8, which graphs to make: TensorRT's symmetric Q/DQ one (``trt``), ONNX
    Runtime's unsigned one for CPUs (``ort``, int8_ort.py), or both (``all``, the default)."""
    from ..data.datasets import open_dataset

    if precision not in TARGET_POINTS:
        raise InputError(f"--precision must be fp16 or int8, got {precision!r}")
    if backend not in ("all", "trt", "ort") or (precision == "fp16" and backend == "ort"):
        raise InputError(f"--backend {backend} does not apply to {precision}",
                         hint="fp16 has one graph for both backends; int8 takes all, trt or ort")
    bundle = load_bundle(bundle_path)
    if precision == "int8" and backend == "ort" and "int8" not in bundle.variants:
        raise InputError("the bundle has no TensorRT INT8 graph to add ONNX Runtime's beside",
                         hint="make both: avgn-edge quantize BUNDLE --precision int8")
    recipe = load_recipe(calib)
    feeds = capture(bundle, recipe)
    # the last fifth of the captured feeds is held out for the stage-error report (and the timing)
    held = {s: v[len(v) * 4 // 5:] or v for s, v in feeds.items()}
    fit = {s: v[:max(1, len(v) * 4 // 5)] for s, v in feeds.items()}
    arms = []
    if backend in ("all", "trt"):
        kept = bundle.variants.get(precision, {}).get("ort")      # a TensorRT re-quantization keeps ONNX Runtime's
        bundle.variants[precision] = _tensorrt_graph(bundle, precision, recipe, fit, held)
        if kept:
            bundle.variants[precision]["ort"] = kept
        arms.append(precision)
    if precision == "int8" and backend in ("all", "ort"):
        bundle.variants["int8"]["ort"] = ort_graph(bundle, recipe, fit, held, reduce_range)
        arms.append("int8-ort")
    add_ort_rewrites(bundle, held)           # the variant's ONNX Runtime forms, before its accuracy is measured
    acc = accuracy(bundle, ["fp32", *arms], open_dataset(eval_data, bundle.config), eval_clips, progress=progress)
    for arm in arms:
        a = dict(acc[arm], drop_points=round(100 * (acc["fp32"]["top1"] - acc[arm]["top1"]), 2),
                 target_points=TARGET_POINTS[precision], eval_data=eval_data)
        (bundle.variants[precision]["ort"] if arm == "int8-ort" else bundle.variants[precision])["accuracy"] = a
    bundle.variants["fp32"]["accuracy"] = dict(acc["fp32"], eval_data=eval_data)
    bundle.save()
    return bundle


def _tensorrt_graph(bundle, precision: str, recipe: dict, fit: dict, held: dict) -> dict:
    """The variant TensorRT builds (FP16 casts, or symmetric int8 Q/DQ), checked; its manifest entry."""
    import onnx
    folder = bundle.root / precision
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    files = {}
    for stage in STAGES:
        src, dst = bundle.stage_path(stage, "fp32"), folder / f"{stage}.onnx"
        if precision == "fp16":
            convert_fp16(src, dst)
        else:
            quantize_int8(src, dst, fit[stage], method=recipe.get("method", "minmax"))
            problems = qdq_problems(onnx.load(str(dst)), excluded_nodes(onnx.load(str(src))))
            # a stage with no Conv/MatMul/Gemm to quantize has no Q/DQ: that is fine
            problems = [p for p in problems if p != "no Q/DQ nodes at all"]
            if problems:
                raise InputError(f"INT8 graph of {stage} failed the Q/DQ checks: {problems[:3]}")
        files[stage] = bundle.add_file(f"{precision}/{stage}.onnx")
    from ..export.trt_support import require_supported
    require_supported({s: onnx.load(str(bundle.root / f)) for s, f in files.items()})
    bundle.variants[precision] = info = {"files": files}
    info["recipe"] = ({"tool": "onnxconverter-common float16 + onnxslim", "keep_fp32": list(KEEP_FP32),
                       "io": "float32"} if precision == "fp16" else
                      {"tool": "onnxruntime.quantization.quantize_static (QDQ)", "calibration": recipe,
                       "symmetric": True, "per_channel": True, "ops": ["Conv", "MatMul", "Gemm"],
                       "excluded": "log-mel front end; activation x activation MatMuls"})
    info["stage_error_vs_fp32"] = stage_errors(bundle, precision, held)
    if precision == "fp16":
        info["evidence"] = _fp16_evidence(bundle, held, info["stage_error_vs_fp32"]["glance_audio"]["avec"])
    return info


def _fp16_evidence(bundle, feeds, kept: float) -> dict:
    """Audio-stage error of FP16 with and without the front end kept in FP32 (why it is kept)."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import onnxruntime as ort

    from ..runtime.ort import OrtBackend

    src = bundle.stage_path("glance_audio", "fp32")
    with tempfile.TemporaryDirectory() as tmp:
        all_half = convert_fp16(src, Path(tmp) / "a.onnx", keep_fp32=())
        sess = ort.InferenceSession(str(all_half), providers=["CPUExecutionProvider"])
        ref = OrtBackend(bundle, "fp32")
        errs = []
        for feed in feeds["glance_audio"]:
            a = ref.run("glance_audio", feed)["avec"]
            b = sess.run(None, feed)[0]
            errs.append(float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12)) if np.isfinite(b).all()
                        else None)
    worst = None if None in errs else max(errs)
    return {"glance_audio_rel_error_all_fp16": worst if worst is not None else "non-finite (overflow)",
            "glance_audio_rel_error_front_end_fp32": kept}
