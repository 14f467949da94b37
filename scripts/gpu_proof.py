"""The measuring steps of scripts/gpu-proof.sh (each a subcommand, run under its own time limit).

    python scripts/gpu_proof.py env     OUT   what the machine has (device, packages), JSON
    python scripts/gpu_proof.py train   OUT   training throughput of a preset with AMP: clips/s, peak memory
    python scripts/gpu_proof.py crop    OUT   the crop kernel's time per patch batch (CUDA events)
    python scripts/gpu_proof.py summary OUT   every step's outcome and figures in OUT/summary.json

Nothing here downloads anything. On the emulated GPU (AVGN_EMULATE_GPU=1) or with PyTorch on the
CPU every figure is labelled as such: none of those is a GPU figure.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import sys
from pathlib import Path


def _write(out: Path, name: str, data: dict) -> None:
    (out / name).write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data))


def env(out: Path) -> int:
    mods = {}
    for m in ("numpy", "torch", "torchvision", "safetensors", "onnx", "onnxruntime", "cv2", "pytest", "tensorrt",
              "cuda.bindings", "cuda.pathfinder"):
        try:
            mods[m] = getattr(importlib.import_module(m), "__version__", "present")
        except Exception as exc:                     # absent, or present and broken: both worth knowing
            mods[m] = f"absent ({type(exc).__name__})"
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "packages": mods,
            "emulated_gpu": os.environ.get("AVGN_EMULATE_GPU", "") not in ("", "0")}
    try:
        import torch
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["torch_device"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                                    "compute_capability": f"{p.major}.{p.minor}", "count": torch.cuda.device_count()}
    except Exception as exc:
        info["torch_error"] = str(exc).splitlines()[0][:200]
    try:
        from avgn_edge.kernels.compile import cuda_include_dir, nvrtc_version
        from avgn_edge.kernels.cuda_driver import check, driver
        d = driver()
        check(d.cuInit(0))
        dev = check(d.cuDeviceGet(0))
        info["cuda_device"] = check(d.cuDeviceGetName(128, dev)).split(b"\0", 1)[0].decode()
        info["cuda_driver_version"] = check(d.cuDriverGetVersion())
        info["nvrtc"] = ".".join(map(str, nvrtc_version()))
        info["cuda_headers"] = cuda_include_dir()
    except Exception as exc:
        info["cuda_error"] = str(exc).splitlines()[0][:300]
    _write(out, "env.json", info)
    return 0


def train(out: Path) -> int:
    """Seconds per training step of each stage of a preset's recipe (after warm-up steps) at a batch,
    AMP bf16 where the GPU has it (else fp16); clips/s and the peak memory PyTorch allocated."""
    import torch

    from avgn_edge.config import get_preset
    from avgn_edge.train.cost import time_steps
    from avgn_edge.train.recipe import RECIPES
    from avgn_edge.train.torch_device import resolve_device
    preset = os.environ.get("GPU_PROOF_TRAIN_PRESET", "paper")
    cuda = torch.cuda.is_available()
    dev = resolve_device("cuda" if cuda else "cpu")
    amp = os.environ.get("GPU_PROOF_AMP") or (("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "off")
    batch = int(os.environ.get("GPU_PROOF_TRAIN_BATCH", "16" if cuda else "1"))
    steps = int(os.environ.get("GPU_PROOF_TRAIN_STEPS", "5" if cuda else "1"))
    cfg, recipe = get_preset(preset), RECIPES.get(preset, RECIPES["paper"])
    result = {"preset": preset, "device": str(dev), "amp": amp, "batch": batch, "timed_steps": steps,
              "label": (torch.cuda.get_device_name(0) if cuda else "PyTorch on the CPU: NOT a GPU figure"),
              "stages": {}}

    def record(stage, seconds, peak_gib):
        row = {"seconds_per_step": round(seconds, 4), "clips_per_s": round(batch / seconds, 2)}
        if peak_gib is not None:
            row["peak_memory_gib"] = round(peak_gib, 2)
        result["stages"][stage] = row
        _write(out, "train.json", result)            # what is measured so far survives a time limit
    time_steps(cfg, recipe, str(dev), amp, batch, steps, on_stage=record)
    return 0


def crop(out: Path) -> int:
    """The crop kernel (patches, as the pipeline launches it: once per window into its slice of the batch)
    at the paper preset's T, k and patch size from 480x640 frames; mean ms per batch over CUDA events."""
    import numpy as np

    from avgn_edge import emulator
    from avgn_edge.config import get_preset
    from avgn_edge.kernels.cuda_driver import DeviceMemory, PrimaryContext, check
    from avgn_edge.kernels.launch import CropKernel
    cfg = get_preset(os.environ.get("GPU_PROOF_CROP_PRESET", "paper"))
    T, k, P, (H, W) = cfg.num_snippets, cfg.top_k, cfg.patch_size, (480, 640)
    reps = int(os.environ.get("GPU_PROOF_CROP_REPS", "3" if emulator.active() else "50"))
    ctx = PrimaryContext()
    d, result = ctx.driver, {"preset": cfg.name, "T": T, "k": k, "patch": P, "frame": [H, W], "reps": reps,
                             "label": "EMULATED GPU: NOT a GPU figure" if emulator.active() else "", "batches": {}}
    try:
        with ctx.current():
            mem, kernel = DeviceMemory(), CropKernel()
            stream = check(d.cuStreamCreate(d.CUstream_flags.CU_STREAM_NON_BLOCKING))
            ev = [check(d.cuEventCreate(0)) for _ in range(2)]
            try:
                rng = np.random.default_rng(0)
                frames = mem.alloc(T * H * W * 3)
                raw = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
                check(d.cuMemcpyHtoD(frames, raw, raw.nbytes))
                for B in (1, 8, 32):
                    idx = np.stack([rng.choice(T, k, replace=False) for _ in range(B)]).astype(np.int32)
                    cen = rng.uniform(0.1, 0.9, (B, k, 2)).astype(np.float32)
                    dix, dcen = mem.alloc(idx.nbytes), mem.alloc(cen.nbytes)
                    dout = mem.alloc(B * k * 3 * P * P * 2)
                    check(d.cuMemcpyHtoD(dix, idx, idx.nbytes))
                    check(d.cuMemcpyHtoD(dcen, cen, cen.nbytes))

                    def batch():
                        for b in range(B):
                            kernel.patches(frames, (T, H, W), dix + b * k * 4, dcen + b * k * 8, k,
                                           P / cfg.frame_size, dout + b * k * 3 * P * P * 2, P, cfg.mean, cfg.std,
                                           fp16=True, stream=stream)
                    batch()                                  # warm-up
                    check(d.cuStreamSynchronize(stream))
                    check(d.cuEventRecord(ev[0], stream))
                    for _ in range(reps):
                        batch()
                    check(d.cuEventRecord(ev[1], stream))
                    check(d.cuEventSynchronize(ev[1]))
                    ms = float(check(d.cuEventElapsedTime(ev[0], ev[1]))) / reps
                    result["batches"][str(B)] = {"ms_per_batch": round(ms, 4), "us_per_patch": round(1e3 * ms / (B * k), 3),
                                                 "patches": B * k}
                    _write(out, "crop.json", result)
            finally:
                for e in ev:
                    d.cuEventDestroy(e)
                d.cuStreamDestroy(stream)
                kernel.close()
                mem.close()
    finally:
        ctx.release()
    return 0


def _pytest_counts(text: str) -> dict:
    last = [ln for ln in text.splitlines() if re.search(r"\b(passed|failed|error|skipped|deselected)\b", ln)]
    return {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", last[-1])} \
        if last else {}


def summary(out: Path) -> int:
    steps = [json.loads(ln) for ln in (out / "steps.jsonl").read_text().splitlines() if ln.strip()] \
        if (out / "steps.jsonl").is_file() else []
    doc = {"steps": {}, "ok": bool(steps) and all(s["rc"] == 0 for s in steps)}
    for s in steps:
        log = out / f"{s['step']}.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        row = {**s, "log": log.name}
        if s["step"] == "selftest":
            row["checks"] = {m[1]: {"ok": m[0] == "ok", "max_abs_error": float(m[2])}
                             for m in re.findall(r"^(ok|FAIL)\s+(\S+): max \|error\| (\S+)", text, re.M)}
            row["device"] = next((ln[8:] for ln in text.splitlines() if ln.startswith("device: ")), None)
        elif s["step"] == "gpu-tests":
            row["counts"] = _pytest_counts(text)
        for name in ("env", "train", "crop"):
            if s["step"].startswith(name) and (out / f"{name}.json").is_file():
                row["result"] = json.loads((out / f"{name}.json").read_text())
        if s["rc"] != 0:
            row["tail"] = text.splitlines()[-5:]
        doc["steps"][s["step"]] = row
    _write(out, "summary.json", doc)
    return 0


if __name__ == "__main__":
    what, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    from avgn_edge import deps
    deps.start_requested()                               # $AVGN_EMULATE_GPU: the emulated GPU, as the CLI does
    sys.exit({"env": env, "train": train, "crop": crop, "summary": summary}[what](folder))
