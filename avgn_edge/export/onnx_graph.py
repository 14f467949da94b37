"""One stage module -> one checked ONNX graph (opset 17, onnxslim, onnx.checker, the stage's exact I/O).
The bundle's export (onnx_export.py) and the modality heads' graph (modality.py) both write through it."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from ..version import __version__
from ..deps import require
from ..errors import BundleError

OPSET = 17


def export_stage(module: torch.nn.Module, spec, example: dict[str, np.ndarray], path: Path):
    """``example``: real inputs with a leading batch (traced as is; the batch axis is made dynamic)."""
    onnx = require("onnx")
    onnxslim = require("onnxslim")
    args = tuple(torch.from_numpy(example[t.name]) for t in spec.inputs)
    dynamic = {t.name: {0: "batch"} for t in spec.inputs + spec.outputs}
    buf = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)   # the fused encoder-layer kernel has no ONNX form
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
                          dynamic_axes=dynamic)
    torch.backends.mha.set_fastpath_enabled(fastpath)
    model = onnxslim.slim(onnx.load_from_string(buf.getvalue()))
    model.producer_name, model.producer_version = "avgn-edge", __version__
    model.doc_string = f"avgn-edge stage {spec.name}"
    onnx.checker.check_model(model, full_check=True)
    check_io(model, spec)
    onnx.save(model, str(path))
    return model


_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 3: "int8", 9: "bool"}


def graph_io(model) -> tuple[list, list]:
    def desc(vi):           # a symbolic dim (dim_param) reads -1, as in the manifest
        t = vi.type.tensor_type
        dims = tuple(-1 if d.dim_param or not d.HasField("dim_value") else d.dim_value for d in t.shape.dim)
        return vi.name, dims, _DTYPES.get(t.elem_type, str(t.elem_type))
    inits = {i.name for i in model.graph.initializer}
    return [desc(v) for v in model.graph.input if v.name not in inits], [desc(v) for v in model.graph.output]


def check_io(model, spec):
    """The graph's inputs/outputs must be exactly the stage contract (names, shapes with the dynamic
    batch, dtypes)."""
    ins, outs = graph_io(model)
    want_in = [(t.name, t.shape, t.dtype) for t in spec.inputs]
    want_out = [(t.name, t.shape, t.dtype) for t in spec.outputs]
    if ins != want_in or outs != want_out:
        raise BundleError(f"stage {spec.name} exported with I/O {ins} -> {outs}, expected {want_in} -> {want_out}")
