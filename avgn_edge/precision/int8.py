"""FP32 -> INT8 with explicit Q/DQ nodes in TensorRT's style, via ONNX Runtime's quantizer.

Symmetric int8 (zero points 0), per-channel weights, Q/DQ only on the inputs of Conv,
MatMul and Gemm (TensorRT fuses those), no int32 bias DQ (TensorRT's parser rejects it),
outputs of those ops left unquantized. Not quantized: the log-mel front end (its power
spectrum spans ~10 decades) and activation x activation MatMuls (attention, soft-argmax,
attention pooling), which TensorRT keeps in higher precision anyway.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from ..deps import require
from .fp16 import KEEP_FP32

log = logging.getLogger(__name__)
QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]


def excluded_nodes(model) -> list[str]:
    weights = {i.name for i in model.graph.initializer}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    out = []
    for n in model.graph.node:
        if any(k in n.name for k in KEEP_FP32):
            out.append(n.name)
        elif n.op_type == "MatMul" and not any(i in weights or i in constants for i in n.input):
            out.append(n.name)
    return out


@contextlib.contextmanager
def quiet_quantizer():
    """ONNX Runtime's quantizer warns on the root logger for every integer (shape) tensor it skips and
    asks for its optional pre-processing each time: true, and noise to a user of ``quantize``."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


class FeedReader:
    """The calibration data reader ONNX Runtime's quantizer wants, over captured feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


def quantize_int8(src: str | Path, dst: str | Path, feeds: list[dict[str, np.ndarray]], method: str = "minmax") -> Path:
    onnx = require("onnx")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    model = onnx.load(str(src))
    exclude = excluded_nodes(model)
    tmp = Path(str(dst) + ".tmp.onnx")
    with quiet_quantizer():
        quantize_static(str(src), str(tmp), FeedReader(feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=exclude, calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                       "OpTypesToExcludeOutputQuantization": QUANTIZED_OPS})
    q = onnx.load(str(tmp))
    tmp.unlink()
    onnx.checker.check_model(q, full_check=True)
    onnx.save(q, str(dst))
    return Path(dst)
