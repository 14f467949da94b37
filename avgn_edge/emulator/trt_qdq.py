"""TensorRT's rules for explicit quantization (Q/DQ) ONNX graphs, as the emulated parser checks them.

TensorRT's INT8 is symmetric and its scales are build-time constants (onnx-tensorrt's
QuantizeLinear/DequantizeLinear importers; TensorRT developer guide, "Explicit Quantization"):

* every zero point is 0 (and INT8 / FP8, the types the importer accepts);
* every scale is a constant: an initializer, a Constant node's output, or folded from them;
* a scale with more than one value (per-channel) quantizes weights only: its data input is a
  constant too (an activation takes one per-tensor scale).

``problems(model)`` lists the first breach as (node index, name, op, text); [] when the graph follows them.
"""

from __future__ import annotations

import numpy as np

QDQ = ("QuantizeLinear", "DequantizeLinear")


def problems(model) -> list[tuple[int, str, str, str]]:
    from onnx import numpy_helper
    g = model.graph
    consts = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    folded = set(consts)                    # constants and what folds from them (e.g. Q of a weight)
    for n in g.node:
        if all(not x or x in folded for x in n.input):
            folded.update(n.output)
    for i, n in enumerate(g.node):
        if n.op_type not in QDQ:
            continue
        name = n.name or f"#{i + 1}"
        where = (i, name, n.op_type)
        x, scale = n.input[0], n.input[1] if len(n.input) > 1 else ""
        if scale not in folded:
            return [(*where, f"the scale {scale!r} of a {n.op_type} is not a build-time constant: TensorRT "
                             "needs constant Q/DQ scales")]
        if len(n.input) > 2 and n.input[2]:
            zp = n.input[2]
            if zp not in folded:
                return [(*where, f"the zero point {zp!r} is not a build-time constant")]
            value = numpy_helper.to_array(consts[zp]) if zp in consts else np.zeros(1, np.int8)
            if value.dtype != np.int8 and "float8" not in str(value.dtype):
                return [(*where, f"zero point {zp!r} is {value.dtype}: TensorRT takes INT8 (or FP8) Q/DQ only")]
            if np.any(value.astype(np.float64) != 0):
                return [(*where, f"zero point {zp!r} is not 0: TensorRT's quantization is symmetric (zero point "
                                 "must be all zeros)")]
        if scale in consts and numpy_helper.to_array(consts[scale]).size > 1 and x not in folded:
            return [(*where, f"per-channel scale {scale!r} on {x!r}, which is not a constant: TensorRT quantizes "
                             "activations per tensor; per-channel Q/DQ is for weights only")]
    return []
