"""Training across processes: torchrun + gloo on the CPU, against one process.

Tolerance of the comparison (2 processes x batch 4 vs 1 process x batch 8, same seed, same
global batches): each process draws its own dropout masks (p = 0.2 in the heads, 0.1 in
AV-TeST) and random patches, and batch norm normalises over its own 4 clips x T snippets
instead of 8 - the behaviour of any DDP run without SyncBatchNorm. Over three seeds these
moved the per-step total loss by at most 2.5% (mean 1.0%); the test allows 6% per step and
2.5% on average. That the processes see exactly the single process's clips is tested exactly
(test_sharding_gives_each_process_its_slice_of_the_global_batch), and that their weights stay
identical is checked by the trainer itself at the end of every run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
RUN = ["train", "--preset", "tiny", "--data", "synth:seed=0,clips=256", "--batch-size", "8", "--device", "cpu",
       "--workers", "0", "--log-every", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args, nproc=2, wait=True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "avgn_edge", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_sharding_gives_each_process_its_slice_of_the_global_batch(tiny_cfg):
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.train.batches import loader
    ds = open_dataset("synth:seed=0,clips=40", tiny_cfg)
    idx = lambda b: [int(x) for x in b["label"]]            # noqa: E731
    one = [idx(b) for b in loader(ds, 8, shuffle=True, seed=7, workers=0)]
    parts = [[idx(b) for b in loader(ds, 4, shuffle=True, seed=7, workers=0, rank=r, world=2)] for r in (0, 1)]
    assert len(one) == len(parts[0]) == len(parts[1]) == 5
    for whole, a, b in zip(one, *parts):
        assert sorted(whole) == sorted(a + b) and whole[0::2] == a and whole[1::2] == b


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    two = torchrun(*RUN, "--steps", "0.1", "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "avgn_edge", *RUN, "--steps", "0.1", "--out", tmp_path / "one"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = rows(tmp_path / "two" / "history.jsonl"), rows(tmp_path / "one" / "history.jsonl")
    assert [(r["stage"], r["step"]) for r in a] == [(r["stage"], r["step"]) for r in b] and len(a) == 14
    diffs = [abs(x["total"] - y["total"]) / y["total"] for x, y in zip(a, b)]
    assert max(diffs) < 0.06 and sum(diffs) / len(diffs) < 0.025, diffs
    from avgn_edge.train.checkpoint import read_checkpoint
    _, _, prov = read_checkpoint(tmp_path / "two" / "model.safetensors")
    assert prov["processes"] == 2 and prov["batch_per_process"] == 4
    assert two.stdout.strip().splitlines()[-1].endswith("model.safetensors")      # printed once, by rank 0


@pytest.mark.slow
def test_a_killed_process_and_the_run_resumes(tmp_path):
    """SIGKILL one rank mid-run: torchrun stops the job, the last checkpoint is intact, and the
    same command resumes it to the end, validation shards gathered over both processes."""
    out = tmp_path / "run"
    args = [*RUN, "--steps", "0.3", "--checkpoint-every", "4", "--val", "synth:seed=2000,clips=10",
            "--val-every", "6", "--out", out]
    job = torchrun(*args, wait=False)
    state = out / "train_state.pt"
    deadline = time.monotonic() + 300
    while not state.is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, job.stdout.read()[-3000:]
    victim = _worker(job.pid, rank=1)
    os.kill(victim, signal.SIGKILL)
    log = job.communicate(timeout=300)[0]
    assert job.returncode != 0, log[-2000:]
    saved = torch.load(state, weights_only=True)
    assert saved["stage"] < 3
    again = torchrun(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming at stage" in again.stderr
    assert torch.load(state, weights_only=True)["stage"] == 3
    steps = [r["global_step"] for r in rows(out / "history.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 42               # no row twice: only rank 0 writes
    val = rows(out / "validation.jsonl")
    assert val and all(r["clips"] == 10 for r in val)                     # both shards of 5 gathered
    assert (out / "best.safetensors").is_file()


def _worker(agent: int, rank: int) -> int:
    """The pid of torchrun's worker process with RANK=rank."""
    for _ in range(200):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == agent and f"RANK={rank}".encode() in env:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError("no worker process found")
