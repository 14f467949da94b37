"""Structural checks of Q/DQ graphs: what TensorRT needs, verified on the CPU."""

from __future__ import annotations

import numpy as np

from .int8 import QUANTIZED_OPS


def qdq_problems(model, excluded: list[str] = ()) -> list[str]:
    """Empty when: every zero point is int8 0, no DequantizeLinear reads int32, every
    DequantizeLinear feeds a Conv/MatMul/Gemm (other readers of the same tensor, e.g. a
    residual Add, share it - TensorRT fuses that too), and no excluded node reads a DQ output."""
    from onnx import numpy_helper
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    problems = []
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        problems.append("no Q/DQ nodes at all")
    for n in qdq:
        if len(n.input) > 2 and n.input[2] in inits:
            zp = numpy_helper.to_array(inits[n.input[2]])
            if zp.dtype != np.int8 or np.any(zp != 0):
                problems.append(f"{n.name}: zero point {zp.dtype} {zp.ravel()[:3]} (want int8 0)")
        if n.op_type == "DequantizeLinear":
            src = inits.get(n.input[0])
            if src is not None and numpy_helper.to_array(src).dtype == np.int32:
                problems.append(f"{n.name}: int32 DequantizeLinear (a quantized bias)")
            readers = consumers.get(n.output[0], [])
            if not any(c.op_type in QUANTIZED_OPS for c in readers):
                problems.append(f"{n.name} feeds no Conv/MatMul/Gemm (only {sorted({c.op_type for c in readers})})")
            for c in readers:
                if c.name in excluded:
                    problems.append(f"{n.name} feeds excluded node {c.name}")
    return problems
