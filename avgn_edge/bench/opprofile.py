"""Where a stage's time goes: ONNX Runtime's own profile, per kind of operator, with the work each did.

Every executed node reports its kernel time and its tensors' shapes; a convolution's MACs follow
from its output and weight shapes (output elements x weight elements per output channel). So a
stage's time splits into depthwise convolutions (weight [C, 1, k, k]: little arithmetic per byte
moved, bound by memory bandwidth), 1x1 convolutions and k x k convolutions (matrix products, near
the compute peak), matrix products, the integer kernels of an INT8 graph, and the rest (element-wise,
pooling, layout reorders: bandwidth and per-op overhead).
"""

from __future__ import annotations

import collections
import json
import os
import tempfile

import numpy as np

CONV_OPS = {"Conv", "FusedConv", "QLinearConv", "ConvInteger"}
MATMUL_OPS = {"MatMul", "Gemm", "FusedMatMul", "FusedGemm", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
              "DynamicQuantizeMatMul"}


def _shapes(arg) -> list[list[int]]:
    return [next(iter(d.values())) for d in arg or []]


def _weights(model) -> dict[str, tuple[list[int], int]]:
    """node name -> (weight dims, group) of every convolution / matrix product of an optimised graph."""
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        w = n.input[3] if n.op_type == "QLinearConv" else (n.input[1] if len(n.input) > 1 else "")
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        out[n.name] = (inits.get(w), group)
    return out


def classify(op: str, weight: list[int] | None, group: int, inputs: list[list[int]], outputs: list[list[int]]) -> tuple[str, float]:
    """(kind, MACs) of one executed node."""
    q = "int8 " if op.startswith(("QLinear", "ConvInteger", "MatMulInteger", "DynamicQuantize")) else ""
    if op in CONV_OPS and weight and outputs:
        macs = float(np.prod(outputs[0])) * float(np.prod(weight[1:]))
        if group > 1 and weight[1] == 1:
            return q + "conv depthwise", macs
        return q + ("conv 1x1" if len(weight) == 4 and weight[2] == weight[3] == 1 else "conv kxk"), macs
    if op in MATMUL_OPS and len(inputs) > 1 and outputs:
        a = inputs[0]
        return q + "matmul", float(np.prod(outputs[0])) * float(a[-1] if a else 0)
    return "other", 0.0


def op_breakdown(path, settings: dict, feed: dict[str, np.ndarray], reps: int = 5) -> dict:
    """{kind: {"ms": per call, "share": of the kernels' time, "gflops": achieved}} for one stage graph."""
    import onnx
    import onnxruntime as ort

    from ..runtime.ort import _options
    opts = _options(ort, settings)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "p")
        opts.optimized_model_filepath = os.path.join(tmp, "optimised.onnx")     # the nodes that really run
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=settings["disabled_optimizers"] or None)
        sess.run(None, feed)                                     # warm-up (profiled too: dropped below)
        for _ in range(reps):
            sess.run(None, feed)
        events = json.loads(open(sess.end_profiling()).read())
        weights = _weights(onnx.load(opts.optimized_model_filepath))
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    start = runs[1]["ts"] if len(runs) > 1 else 0                # skip the warm-up run
    ms, macs = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        a = e.get("args", {})
        w, g = weights.get(e["name"][:-len("_kernel_time")], (None, 1))
        kind, m = classify(a.get("op_name", ""), w, g, _shapes(a.get("input_type_shape")),
                           _shapes(a.get("output_type_shape")))
        ms[kind] += e["dur"] / 1e3 / reps
        macs[kind] += m / reps
    total = sum(ms.values()) or 1.0
    return {k: {"ms": round(v, 3), "share": round(v / total, 3),
                "gflops": round(2 * macs[k] / (v * 1e-3) / 1e9, 1) if macs[k] else None}
            for k, v in ms.most_common()}
