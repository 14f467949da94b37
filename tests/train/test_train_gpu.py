"""Training on a CUDA GPU: AMP, channels-last, compile, resume on another device, NCCL DDP.
Skipped where PyTorch sees no GPU (run on a GPU machine: pytest -m gpu tests/train/test_train_gpu.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.train.checkpoint import read_checkpoint  # noqa: E402
from avgn_edge.train.loop import train  # noqa: E402
from avgn_edge.train.recipe import Recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_cuda_training_resumes_on_the_cpu(tmp_path, tiny_cfg, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bfloat16 on this GPU")
    ds = open_dataset("synth:seed=0,clips=64", tiny_cfg)
    half = Recipe(batch_size=8, warmup_steps=6, glance_steps=0, finetune_steps=0)
    train(tiny_cfg, ds, tmp_path, half, progress=False, workers=0, device="cuda", amp=amp, checkpoint_every=3)
    st = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert all(v.device.type == "cpu" for v in st["model"].values())
    full = Recipe(batch_size=8, warmup_steps=6, glance_steps=4, finetune_steps=4)
    train(tiny_cfg, ds, tmp_path, full, progress=False, workers=0, device="cpu")      # the same run, on the CPU
    w, _, prov = read_checkpoint(tmp_path / "model.safetensors")
    assert prov["device"] == "cpu" and all(torch.isfinite(v.float()).all() for v in w.values())
    rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert all(r["total"] == r["total"] for r in rows)                                 # no NaN


def test_compiled_channels_last_bf16(tmp_path, tiny_cfg):
    ds = open_dataset("synth:seed=0,clips=64", tiny_cfg)
    path = train(tiny_cfg, ds, tmp_path, Recipe(batch_size=8, warmup_steps=3, glance_steps=2, finetune_steps=2),
                 progress=False, workers=0, device="cuda", amp="bf16" if torch.cuda.is_bf16_supported() else "fp16",
                 compile=True, channels_last=True)
    assert path.is_file()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_torchrun_nccl_two_gpus(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "avgn_edge",
           "train", "--preset", "tiny", "--data", "synth:seed=0,clips=256", "--batch-size", "16", "--steps", "0.2",
           "--device", "cuda", "--amp", "bf16", "--workers", "2", "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    _, _, prov = read_checkpoint(tmp_path / "run" / "model.safetensors")
    assert prov["processes"] == 2 and prov["device"] == "cuda:0"
