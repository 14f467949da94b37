"""A Triton model repository from a bundle: one model per stage, an ensemble per chain.

    REPO/avgn_glance_visual/config.pbtxt   1/model.onnx                  --platform onnxruntime
    REPO/avgn_decide/config.pbtxt          1/model.sm87.plan ...         --platform tensorrt
    REPO/avgn_head/config.pbtxt            1/model.py  1/model.onnx      --platform python
    REPO/avgn_encode/config.pbtxt          1/   ensemble: glance_visual + glance_audio (one call per snippet batch)
    REPO/avgn_focus_head/config.pbtxt      1/   ensemble: focus_local -> head (one call after the crop)

Every config is built as Triton's own ``ModelConfig`` protobuf (``model_config_pb2``, shipped with
tritonclient) and written with protobuf's text format, so what is written is what Triton parses.
Each stage model has the manifest's batch range as ``max_batch_size`` (axis 0 is Triton's batch
axis, the dims are the rest) and a dynamic batcher preferring the manifest's ``opt`` and ``max``.
The server holds no state: the feature ring of each stream stays with its client, which sends
the window to ``decide``; the crop between ``decide`` and ``focus_local`` reads the k chosen
full-resolution frames, which only the client has, so the decision takes two calls
(``avgn_decide``, then ``avgn_focus_head`` with the patches) and any replica can answer either.
Each model's config carries the sha256 of the bundle's ONNX file it runs or was built from, so a
client with another bundle is told so instead of getting wrong scores.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..bundle import STAGES, Bundle
from ..deps import EMULATED_GPU_NAME, require
from ..errors import InputError
from ..runtime.ort import session_settings, stage_work
from ..runtime.pipeline import CHAINS, chain_io
from ..runtime.triton_names import BUNDLE, PREFIX, SHA256, model_name

log = logging.getLogger(__name__)

PLATFORMS = ("onnxruntime", "tensorrt", "python")
_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
          "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}
_ORT_LEVEL_DISABLE_ALL, _ORT_LEVEL_EXTENDED = 2, 1          # onnxruntime_backend's graph.level values


def model_config_pb2():
    return require("tritonclient.grpc.model_config_pb2")


def export_repository(bundle: Bundle, out: str | Path, precision: str = "fp32", platform: str = "onnxruntime",
                      version: int = 1, prefix: str = PREFIX, engines: str | Path | None = None,
                      queue_delay_us: int = 2000, instances: int = 1) -> list[Path]:
    """Write (or replace) version ``version`` of every model; returns the model folders."""
    if platform not in PLATFORMS:
        raise InputError(f"unknown platform {platform!r}", hint=f"choose one of {', '.join(PLATFORMS)}")
    if version < 1:
        raise InputError(f"a Triton model version is a positive integer, got {version}")
    bundle.stage_path(STAGES[0], precision)                 # a missing variant: a clear error first
    plans = find_engines(bundle, precision, engines) if platform == "tensorrt" else {}
    out = Path(out)
    written = []
    for stage in STAGES:
        cfg = stage_config(bundle, stage, precision, platform, prefix, queue_delay_us, instances, plans.get(stage))
        files = _stage_files(bundle, stage, precision, platform, plans.get(stage))
        written.append(_write_model(out, cfg, version, files))
    for chain in CHAINS:
        written.append(_write_model(out, ensemble_config(bundle, chain, prefix), version, {}))
    log.debug("wrote %d models (%s, %s, version %d) to %s", len(written), platform, precision, version, out)
    return written


def stage_config(bundle: Bundle, stage: str, precision: str, platform: str, prefix: str = PREFIX,
                 queue_delay_us: int = 2000, instances: int = 1, plans: dict | None = None):
    """The ``ModelConfig`` of one stage model."""
    pb = model_config_pb2()
    spec = bundle.stages[stage]
    # a plan takes what its optimization profile allows (every plan of the model: the smallest)
    opt, top = (spec.batch.opt, spec.batch.max) if not plans else \
        (min(p["batch"][1] for p in plans.values()), min(p["batch"][2] for p in plans.values()))
    cfg = pb.ModelConfig(name=model_name(prefix, stage), max_batch_size=top)
    cfg.input.extend(_tensor(pb.ModelInput, t) for t in spec.inputs)
    cfg.output.extend(_tensor(pb.ModelOutput, t) for t in spec.outputs)
    cfg.dynamic_batching.preferred_batch_size.extend(sorted({min(opt, top), top}))
    cfg.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    settings = session_settings(stage, precision, work=stage_work(bundle, stage))
    params = {SHA256: bundle.files[bundle.variants[precision]["files"][stage]],
              BUNDLE: f"{bundle.config.name} {precision}"}
    if platform == "onnxruntime":
        cfg.platform = "onnxruntime_onnx"
        params["intra_op_thread_count"] = str(settings["threads"])
        if not settings["optimize"] or settings["disabled_optimizers"]:
            # int8: no optimisations (the exact Q/DQ arithmetic); fp16: not the NCHWc layout pass
            cfg.optimization.graph.level = _ORT_LEVEL_DISABLE_ALL if not settings["optimize"] else _ORT_LEVEL_EXTENDED
    elif platform == "python":
        cfg.backend = "python"
        cfg.instance_group.add(count=instances, kind=pb.ModelInstanceGroup.KIND_CPU)
        params.update(intra_op_threads=str(settings["threads"]), optimize="1" if settings["optimize"] else "0",
                      disabled_optimizers=",".join(settings["disabled_optimizers"]))
    else:
        cfg.platform = "tensorrt_plan"
        cfg.instance_group.add(count=instances, kind=pb.ModelInstanceGroup.KIND_GPU)
        for cc, plan in sorted((plans or {}).items()):
            cfg.cc_model_filenames[cc] = plan["file"]
        params["avgn_trt_versions"] = ",".join(sorted({p["trt_version"] for p in (plans or {}).values()}))
    for k in sorted(params):
        cfg.parameters[k].string_value = params[k]
    return cfg


def ensemble_config(bundle: Bundle, chain: str, prefix: str = PREFIX):
    """An ensemble running a chain's stages in one request (tensor names are shared across stages)."""
    pb = model_config_pb2()
    stages = CHAINS[chain]
    inputs, outputs = chain_io(bundle.stages, chain)
    cfg = pb.ModelConfig(name=model_name(prefix, chain), platform="ensemble",
                         max_batch_size=min(bundle.stages[s].batch.max for s in stages))
    cfg.input.extend(_tensor(pb.ModelInput, t) for t in inputs)
    cfg.output.extend(_tensor(pb.ModelOutput, t) for t in outputs)
    for s in stages:
        step = cfg.ensemble_scheduling.step.add(model_name=model_name(prefix, s), model_version=-1)
        for t in bundle.stages[s].inputs:
            step.input_map[t.name] = t.name
        for t in bundle.stages[s].outputs:
            step.output_map[t.name] = t.name
    return cfg


def find_engines(bundle: Bundle, precision: str, engines: str | Path | None) -> dict[str, dict[str, dict]]:
    """stage -> compute capability -> {"path", "file", "trt_version", "batch"}: the engines in
    ``engines`` (an ``avgn-edge build-engines`` cache, any number of GPU kinds) built from this
    bundle's graphs; ``batch`` is the plan's optimization profile (min, opt, max). Engines of the
    emulated GPU are no TensorRT plans and are left out."""
    from ..trt.cache import read_sidecar
    if engines is None:
        raise InputError("--platform tensorrt needs --engines DIR (engines built from this bundle)",
                         hint=f"build them on the target GPU: avgn-edge build-engines BUNDLE --precision {precision}")
    folder = Path(engines)
    found: dict[str, dict[str, dict]] = {}
    for stage in STAGES:
        want = bundle.files[bundle.variants[precision]["files"][stage]]
        for path in sorted(folder.glob(f"{stage}.{precision}.*.engine")):
            try:
                key = read_sidecar(path)["key"]
            except ValueError:
                continue
            cc = key.get("compute_capability", "")
            if key.get("onnx_sha256") == want and cc and cc != "unknown" and key.get("gpu_name") != EMULATED_GPU_NAME:
                found.setdefault(stage, {})[cc] = {"path": path, "file": f"model.sm{cc.replace('.', '')}.plan",
                                                   "trt_version": key.get("trt_version", ""),
                                                   "batch": tuple(key.get("batch") or (1, 1, 1))}
        if stage not in found:
            raise InputError(f"no TensorRT engine for {stage} ({precision}) built from this bundle on a real GPU "
                             f"in {folder}", hint=f"build them on the target GPU: avgn-edge build-engines BUNDLE "
                                                  f"--precision {precision} --out {folder}")
    return found


def _tensor(cls, t):
    if t.dtype not in _TYPES:
        raise InputError(f"tensor {t.name} has dtype {t.dtype}, which this exporter does not map to Triton")
    return cls(name=t.name, data_type=_TYPES[t.dtype], dims=list(t.shape[1:]))


def _stage_files(bundle: Bundle, stage: str, precision: str, platform: str, plans: dict | None) -> dict[str, Path]:
    """Version-folder file name -> source file."""
    onnx = bundle.stage_path(stage, precision)
    if platform == "onnxruntime":
        return {"model.onnx": onnx}
    if platform == "python":
        return {"model.onnx": onnx, "model.py": Path(__file__).with_name("python_model.py")}
    return {p["file"]: p["path"] for p in plans.values()}


def _write_model(repo: Path, cfg, version: int, files: dict[str, Path]) -> Path:
    """``repo/<name>/config.pbtxt`` and ``<version>/`` with ``files`` (the old version folder replaced)."""
    from google.protobuf import text_format
    folder = repo / cfg.name
    vdir = folder / str(version)
    tmp = folder / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, src in files.items():
        shutil.copyfile(src, tmp / name)
    shutil.rmtree(vdir, ignore_errors=True)
    tmp.rename(vdir)
    (folder / "config.pbtxt").write_text(text_format.MessageToString(cfg, use_short_repeated_primitives=True))
    return folder


def read_config(path: str | Path):
    """Parse a ``config.pbtxt`` with Triton's schema (an unknown field or a bad value raises
    ``google.protobuf.text_format.ParseError``)."""
    from google.protobuf import text_format
    return text_format.Parse(Path(path).read_text(), model_config_pb2().ModelConfig())
