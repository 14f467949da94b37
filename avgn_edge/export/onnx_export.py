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
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from ..version import __version__
from ..bundle import STAGES, Bundle, sha256
from ..deps import require
from ..errors import BundleError
from ..train.checkpoint import load_checkpoint, resolve_checkpoint
from ..model.flops import stage_gflops
from .onnx_graph import OPSET, export_stage
from .ort_rewrites import add_ort_rewrites
from .parity import batches, collect_stage_inputs, end_to_end_parity, stage_parity
from .stages import specs_for, stage_modules

log = logging.getLogger(__name__)


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
                     "parity_data": parity_data, "gflops_per_clip": stage_gflops(model),
                     **_pretrained(cfg)})
    for s in STAGES:
        bundle.add_file(f"fp32/{s}.onnx")
    if cfg.encoder == "lite0":            # heard / seen / both (runtime/modality.py)
        from .modality import export_modality
        heads = samples["head"]
        bundle.variants["fp32"]["modality_parity"] = export_modality(
            model, bundle, np.concatenate([h["gvecs"] for h in heads]), np.concatenate([h["avecs"] for h in heads]))
    bundle.variants["fp32"]["parity"] = {
        **stage_parity(bundle, modules, samples),
        "end_to_end": end_to_end_parity(bundle, model, open_dataset(parity_data, cfg))}
    # ONNX Runtime's faster forms of some stages (ort_rewrites.py), checked on the same real inputs
    add_ort_rewrites(bundle, {s: batches(samples[s], cfg.num_snippets) for s in STAGES})
    bundle.save()
    return bundle


def _pretrained(cfg) -> dict:
    """Where pretrained weights in the graphs came from, and their licence."""
    if cfg.encoder != "lite0":
        return {}
    from ..model.lite import LITE0_LICENSE, LITE0_SOURCE
    return {"pretrained": {"weights": "ImageNet EfficientNet-Lite0 (glance, audio and local trunks' initialisation)",
                           "source": LITE0_SOURCE, "license": LITE0_LICENSE}}
