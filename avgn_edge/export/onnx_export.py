"""Checkpoint -> bundle: one ONNX graph per stage, checked, simplified, parity-tested.

Every graph has a dynamic leading batch (ONNX ``dim_param`` "batch", -1 in the manifest) and
static shapes otherwise; it is traced with a batch of 2 (so no size-1 broadcast gets baked in)
and checked against PyTorch at several batch sizes (parity.py).

    bundle = export_bundle("synth", "out/bundle")

Opset 17 through the TorchScript exporter: LayerNormalization is native there, and it is
well inside what TensorRT 10.3's parser (JetPack 6) reads; the dynamo exporter cannot go
below 18. Every graph then passes ``onnx.checker`` (full check), is simplified with
onnxslim (lossless; onnxsim grows some graphs and breaks FP16 conversion, see
precision notes), must contain only ops and dtypes the TensorRT parser supports, and
must have exactly the I/O the bundle's stage contract says.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from ..version import __version__
from ..bundle import STAGES, Bundle, sha256
from ..deps import require
from ..errors import BundleError
from ..train.checkpoint import load_checkpoint, resolve_checkpoint
from ..model.flops import stage_gflops
from .parity import batches, collect_stage_inputs, end_to_end_parity, stage_parity
from .stages import specs_for, stage_modules

log = logging.getLogger(__name__)
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


def export_bundle(checkpoint, out: str | Path, parity_data: str = "synth:seed=1000,clips=16",
                  force: bool = False) -> Bundle:
    from ..data.datasets import open_dataset
    from .trt_support import require_supported

    onnx = require("onnx")
    ckpt_path = resolve_checkpoint(checkpoint)
    model, prov = load_checkpoint(ckpt_path)
    cfg = model.cfg
    out = Path(out)
    if (out / "manifest.json").exists() and not force:
        raise BundleError(f"{out} already holds a bundle", hint="pass --force to overwrite it")
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists():       # never delete a folder that is not a bundle
            raise BundleError(f"{out} exists and is not a bundle", hint="choose a new or empty --out folder")
        shutil.rmtree(out)
    (out / "fp32").mkdir(parents=True)
    specs = specs_for(model)
    modules = stage_modules(model)
    log.info("collecting real stage inputs from %s", parity_data)
    samples = collect_stage_inputs(model, open_dataset(parity_data, cfg))
    graphs = {}
    for name in STAGES:
        example = batches(samples[name], 2)[0]
        graphs[name] = export_stage(modules[name], specs[name], example, out / "fp32" / f"{name}.onnx")
        log.info("exported %-13s %6.1f kB", name, (out / "fp32" / f"{name}.onnx").stat().st_size / 1e3)
    require_supported(graphs)
    bundle = Bundle(out, cfg, specs, {"fp32": {"files": {s: f"fp32/{s}.onnx" for s in STAGES}}}, {},
                    {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256(ckpt_path),
                     "training": prov, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "avgn_edge": __version__, "torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET,
                     "parity_data": parity_data, "gflops_per_clip": stage_gflops(model)})
    for s in STAGES:
        bundle.add_file(f"fp32/{s}.onnx")
    bundle.variants["fp32"]["parity"] = {
        **stage_parity(bundle, modules, samples),
        "end_to_end": end_to_end_parity(bundle, model, open_dataset(parity_data, cfg))}
    bundle.save()
    return bundle
