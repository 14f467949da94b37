"""FP32 -> FP16 ONNX: the form a strongly typed TensorRT network builds as FP16.

Graph inputs and outputs stay FP32 (the runtime's contract does not change); everything
inside runs in FP16 except what is listed in ``KEEP_FP32``: the log-mel front end, whose
STFT power reaches ~1e5 and overflows FP16 (max 65504); this is measured, not assumed -
``quantize`` records the error with and without it in the manifest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..deps import require

# node-name fragments of the numerically sensitive subgraphs kept in FP32
KEEP_FP32 = ("/frontend/",)


def convert_fp16(src: str | Path, dst: str | Path, keep_fp32: tuple[str, ...] = KEEP_FP32) -> Path:
    onnx = require("onnx")
    onnxslim = require("onnxslim")
    float16 = require("onnxconverter_common.float16")
    model = onnx.load(str(src))
    blocked = [n.name for n in model.graph.node if any(k in n.name for k in keep_fp32)]
    with warnings.catch_warnings():      # it warns for every tiny weight it rounds to FP16's 1e-7 floor
        warnings.simplefilter("ignore", UserWarning)
        half = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=blocked)
    # onnxslim re-derives the intermediate types, which the converter can leave stale
    # (e.g. around ReduceMax), and folds the redundant Cast pairs it inserts
    half = onnxslim.slim(half)
    onnx.checker.check_model(half, full_check=True)
    onnx.save(half, str(dst))
    return Path(dst)
