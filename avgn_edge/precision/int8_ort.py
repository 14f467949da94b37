"""FP32 -> INT8 for ONNX Runtime's own CPU kernels (x86 and ARM), beside TensorRT's Q/DQ graph.

TensorRT wants symmetric signed activations (int8.py); on x86 ONNX Runtime runs those on its
slow s8s8 path (measured 0.1x FP32 on a 512x512 product, docs/benchmarks.md). Its fast integer
kernels (u8s8: VNNI / AVX2 on x86, the dot-product instructions on ARM) take *unsigned*
activations with a zero point and signed per-channel weights. Two forms run on them:

- ``qdq``: QuantizeLinear/DequantizeLinear pairs (uint8 activations); ONNX Runtime's graph
  optimiser fuses them into QLinearConv, MatMulIntegerToFloat, QLinearAdd... at load time;
- ``qoperator``: the quantized operators written into the graph (QLinearConv, QLinearMatMul,
  QLinearAdd, ...).

Which one is faster depends on the stage and the machine, so ``quantize_int8_ort`` makes both
and the caller keeps the faster per stage (quantize.py measures them). Not quantized, as in
the TensorRT graph: the log-mel front end and activation x activation MatMuls; also Softmax,
LayerNormalization and the like (ONNX Runtime has no integer kernels for them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..deps import require
from .int8 import FeedReader, excluded_nodes, quiet_quantizer

log = logging.getLogger(__name__)
FORMS = ("qdq", "qoperator")
# what ONNX Runtime has integer kernels for and that is worth quantizing here; the rest stays FP32
# a candidate whose output is off by more than this share of the FP32 output's range (on the held-out
# feeds) is not used: `home`'s glance_audio QOperator graph was off by 1.0 (uint8 per-tensor activations
# over the log-mel trunk) and, once the late fusion leaned on the audio head, cost 11 points of top-1
MAX_STAGE_ERROR = 0.75
ORT_OPS = ["Conv", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "MaxPool", "GlobalAveragePool",
           "AveragePool", "Concat", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"]


def recipe(reduce_range: bool) -> dict:
    """What the manifest records about an ONNX Runtime INT8 graph."""
    return {"tool": "onnxruntime.quantization.quantize_static (QDQ or QOperator, per stage: see forms)",
            "activations": "uint8, asymmetric (per tensor)", "weights": "int8, symmetric, per channel",
            "reduce_range": reduce_range, "ops": ORT_OPS,
            "excluded": "log-mel front end; activation x activation MatMuls"}


def quantize_int8_ort(src: str | Path, dst: str | Path, feeds: list[dict[str, np.ndarray]], form: str = "qdq",
                      method: str = "minmax", reduce_range: bool = False) -> Path:
    """``reduce_range`` (7-bit weights) avoids the u8s8 overflow of x86 CPUs without VNNI, at some accuracy."""
    onnx = require("onnx")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    tmp = Path(str(dst) + ".tmp.onnx")
    with quiet_quantizer():
        quantize_static(str(src), str(tmp), FeedReader(feeds),
                        quant_format=QuantFormat.QDQ if form == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=reduce_range, op_types_to_quantize=ORT_OPS,
                        nodes_to_exclude=excluded_nodes(onnx.load(str(src))), calibrate_method=methods[method],
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    q = onnx.load(str(tmp))
    tmp.unlink()
    onnx.checker.check_model(q, full_check=True)
    onnx.save(q, str(dst))
    return Path(dst)


def time_candidates(stage: str, paths: dict[str, Path], feed: dict[str, np.ndarray], work: float | None = None,
                    budget_s: float = 3.0) -> dict:
    """p50 ms of one call of each candidate graph of a stage, interleaved, as OrtBackend sets it up
    (``work``: the stage's GMACs per item, which set its threads)."""
    from ..runtime.timing import interleaved, percentiles, time_calls
    from ..runtime.ort import open_session, session_settings
    runs = {}
    for name, path in paths.items():
        sess = open_session(path, session_settings(stage, "fp32" if name == "fp32" else "int8", optimize=True,
                                                   work=work))
        runs[name] = (lambda s: lambda: s.run(None, feed))(sess)
    once = sum(min(time_calls(fn, 2, warmup=1)) for fn in runs.values()) / 1e3
    reps = int(np.clip(budget_s / max(once, 1e-6), 5, 60))
    return {k: percentiles(v)["p50_ms"] for k, v in interleaved(runs, reps).items()}


def candidate_errors(stage: str, paths: dict[str, Path], feeds: list[dict]) -> dict:
    """Per candidate graph: the largest error of its outputs relative to FP32's max |value| over
    ``feeds`` (integer outputs: the share that differ)."""
    from ..runtime.ort import open_session, session_settings
    runs = {name: open_session(path, session_settings(stage, "fp32" if name == "fp32" else "int8", optimize=True))
            for name, path in paths.items()}
    ref = [runs["fp32"].run(None, f) for f in feeds]
    out = {}
    for name, sess in runs.items():
        worst = 0.0
        for f, a_all in zip(feeds, ref):
            for a, b in zip(a_all, sess.run(None, f)):
                if np.issubdtype(a.dtype, np.integer):
                    worst = max(worst, float((a != b).mean()))
                else:
                    worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(a).max()), 1e-12))
        out[name] = round(worst, 4)
    return out


def ort_graph(bundle, calibration: dict, fit: dict, held: dict, reduce_range: bool = False) -> dict:
    """``int8-ort/``: per stage the fastest of its QDQ graph, its QOperator graph and FP32 whose output
    is within ``MAX_STAGE_ERROR`` of FP32's, measured on the held-out feeds at the batch a clip sends
    (T snippets for the glance stages); the manifest entry (``variants["int8"]["ort"]``) with the
    measurements and the stage errors."""
    import shutil

    from ..bundle import STAGES
    from ..runtime.ort import stage_work
    from .accuracy import stage_errors
    from .calibrate import stack_feeds
    folder = bundle.root / "int8-ort"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for rel in [r for r in bundle.files if r.startswith("int8-ort/")]:      # an earlier run's graphs: gone
        del bundle.files[rel]
    T = bundle.config.num_snippets
    files, forms, timings, failed, errors = {}, {}, {}, {}, {}
    for stage in STAGES:
        src = bundle.stage_path(stage, "fp32")
        paths = {"fp32": src}
        for form in FORMS:
            dst = folder / f"{stage}.{form}.onnx"
            try:
                paths[form] = quantize_int8_ort(src, dst, fit[stage], form, calibration.get("method", "minmax"),
                                                reduce_range)
            except Exception as exc:        # the quantizer raises many types; the other form may still do
                failed[f"{stage}/{form}"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("INT8 %s graph of %s failed: %s", form, stage, failed[f"{stage}/{form}"])
        feed = stack_feeds(held[stage], T if stage.startswith("glance") else 1)
        errors[stage] = candidate_errors(stage, paths, held[stage])
        paths = {k: v for k, v in paths.items() if k == "fp32" or errors[stage][k] <= MAX_STAGE_ERROR}
        timings[stage] = time_candidates(stage, paths, feed, stage_work(bundle, stage))
        forms[stage] = min(timings[stage], key=timings[stage].get)
        log.info("int8-ort %-13s %s -> %s", stage, timings[stage], forms[stage])
        if forms[stage] == "fp32":
            files[stage] = f"fp32/{stage}.onnx"
        else:
            paths[forms[stage]].replace(folder / f"{stage}.onnx")
            files[stage] = bundle.add_file(f"int8-ort/{stage}.onnx")
        for p in folder.glob(f"{stage}.*.onnx"):
            p.unlink()
    entry = {"files": files, "forms": forms, "candidate_ms": timings, "candidate_error": errors,
             "chosen_by": f"fastest p50 per stage of the candidates within {MAX_STAGE_ERROR} relative error of FP32, "
                          "interleaved, at the batch a clip sends, on the machine that quantized",
             "recipe": dict(recipe(reduce_range), calibration=calibration)}
    if failed:
        entry["failed"] = failed
    bundle.variants["int8"]["ort"] = entry
    entry["stage_error_vs_fp32"] = stage_errors(bundle, "int8", held, tensorrt_graph=False)
    return entry
