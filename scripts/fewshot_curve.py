"""Accuracy of ``avgn-edge train --from`` against clips per new label, frozen vs fine-tuned encoders.

    python scripts/fewshot_curve.py --base RUN_WITHOUT_LABEL --set /work/cache/realav/v1 --label vehicle \
        --shots 1 3 5 10 20 --out /tmp/fewshot [--json curve.json]

The base model was trained without ``--label``; each run fine-tunes it (``--labels keep``) on N clips
of the label and N background clips from the set's TRAIN split (N distinct clips, spread over the
label's recordings), then is scored on the TEST split (packages neither saw): top-1 over all labels,
the new label's recall and precision, and the base labels' top-1 (are they kept?). Minutes are wall
time on this machine (contended: other jobs share its 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def pick(folder: Path, n: int) -> list[Path]:
    files = sorted(folder.glob("*.mp4"))
    idx = np.linspace(0, len(files) - 1, n).round().astype(int) if n > 1 else [0]
    return [files[i] for i in sorted(set(idx))]


def few_clips(set_dir: Path, label: str, n: int, out: Path) -> Path:
    for cls in (label, "background"):
        d = out / cls
        d.mkdir(parents=True, exist_ok=True)
        for f in pick(set_dir / "train" / cls, n):
            link = d / f.name
            if not link.exists():
                link.symlink_to(f)
    return out


def score(ckpt: Path, set_dir: Path, label: str) -> dict:
    import torch
    from home_results import predict
    from avgn_edge.train.checkpoint import load_checkpoint
    model, _ = load_checkpoint(ckpt)
    p = predict(model, str(set_dir / "test"), dense=False)
    labels = model.cfg.labels
    y, pred = p["y"], p["avgn"].argmax(1)
    c = labels.index(label)
    tp = int(((pred == c) & (y == c)).sum())
    base = y != c
    del torch
    return {"top1": float((pred == y).mean()), "new_recall": tp / max(1, int((y == c).sum())),
            "new_precision": tp / max(1, int((pred == c).sum())), "base_top1": float((pred[base] == y[base]).mean()),
            "clips": int(len(y))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--set", default="/work/cache/realav/v1")
    ap.add_argument("--label", default="vehicle")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5, 10, 20])
    ap.add_argument("--arms", nargs="+", default=["frozen", "finetuned"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    set_dir, out = Path(a.set), Path(a.out)
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for n in a.shots:
        data = few_clips(set_dir, a.label, n, out / f"data{n}")
        for arm in a.arms:
            run = out / f"{arm}{n}"
            cmd = [sys.executable, "-m", "avgn_edge", "train", "--from", a.base, "--data", str(data), "--out", str(run),
                   "--no-resume"] + (["--finetune-encoders"] if arm == "finetuned" else [])
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            minutes = (time.perf_counter() - t) / 60
            if r.returncode:
                print(r.stderr[-1500:])
                continue
            row = {"shots": n, "encoders": arm, "train_minutes": round(minutes, 2), **score(run, set_dir, a.label)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
