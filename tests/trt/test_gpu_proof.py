"""scripts/gpu-proof.sh end to end on the emulated GPU (the training step with PyTorch on the CPU, on the
tiny preset to stay short): every step runs, the summary holds their figures, and each figure is
labelled as not a GPU one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_proof_script_runs_end_to_end_on_the_emulator(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("cuda.bindings.driver")
    out = tmp_path / "proof"
    env = {**os.environ, "AVGN_EMULATE_GPU": "1", "PYTHON": sys.executable, "GPU_PROOF_TRAIN_PRESET": "tiny",
           "GPU_PROOF_CROP_REPS": "1", "GPU_PROOF_SLACK": "5", "OUT": str(out)}
    env.pop("PYTHONPATH", None)                          # the script finds the package itself
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-proof.sh")], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=1800)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    steps = s["steps"]
    assert list(steps) == ["env", "selftest", "gpu-tests", "train", "crop"], steps
    assert all(v["rc"] == 0 for v in steps.values()) and s["ok"], {k: (v["rc"], v.get("tail")) for k, v in steps.items()}
    assert steps["env"]["result"]["emulated_gpu"] is True
    checks = steps["selftest"]["checks"]
    assert len(checks) == 6 and all(c["ok"] for c in checks.values()) and "EMULATED" in steps["selftest"]["device"]
    assert steps["gpu-tests"]["counts"].get("passed", 0) >= 1 and not steps["gpu-tests"]["counts"].get("failed")
    train = steps["train"]["result"]
    assert "NOT a GPU figure" in train["label"] and set(train["stages"]) == {"warmup", "glance", "finetune"}
    assert all(r["clips_per_s"] > 0 for r in train["stages"].values())
    crop = steps["crop"]["result"]
    assert "EMULATED" in crop["label"] and set(crop["batches"]) == {"1", "8", "32"}
    assert all(b["ms_per_batch"] >= 0 and b["patches"] == int(n) * crop["k"] for n, b in crop["batches"].items())
    assert not (ROOT / "gpu-proof-out").exists()
