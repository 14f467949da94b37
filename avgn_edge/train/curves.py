"""Training curves: ``history.jsonl`` (losses, learning rate, clips/s), ``validation.jsonl`` and
``curves.png``, written by rank 0 with each checkpoint, so an interrupted run keeps them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class Curves:
    def __init__(self, out: Path, write: bool = True):
        self.out, self.write = Path(out), write
        self._loss: list[dict] = []
        self._val: list[dict] = []

    def loss(self, row: dict):
        self._loss.append(row)

    def validation(self, row: dict):
        self._val.append(row)

    def flush(self, plot: bool = False):
        if not self.write:
            self._loss.clear(), self._val.clear()
            return
        self.out.mkdir(parents=True, exist_ok=True)
        for name, rows in (("history.jsonl", self._loss), ("validation.jsonl", self._val)):
            if rows:
                with open(self.out / name, "a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in rows)
                rows.clear()
        if plot:
            self.plot()

    def plot(self) -> Path | None:
        """curves.png: total loss per stage and validation scores against the global step."""
        loss, val = read_jsonl(self.out / "history.jsonl"), read_jsonl(self.out / "validation.jsonl")
        loss = [r for r in loss if "global_step" in r]
        if not loss:
            return None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:               # the train extra installs it; never fail a run over a plot
            log.warning("matplotlib is not installed: no curves.png")
            return None
        fig, axes = plt.subplots(1, 2 if val else 1, figsize=(11 if val else 6, 4), squeeze=False)
        ax = axes[0][0]
        for stage in dict.fromkeys(r["stage"] for r in loss):
            rows = [r for r in loss if r["stage"] == stage]
            ax.plot([r["global_step"] for r in rows], [r["total"] for r in rows], label=stage)
        ax.set(xlabel="step", ylabel="training loss (sum of the stage's terms)", yscale="log")
        ax.legend()
        if val:
            ax = axes[0][1]
            steps = [r["global_step"] for r in val]
            for key in ("top1", "map"):
                ax.plot(steps, [100 * r[key] for r in val], marker="o", label=f"AVGN {key}")
            if any("dense_top1" in r for r in val):
                rows = [r for r in val if "dense_top1" in r]
                ax.plot([r["global_step"] for r in rows], [100 * r["dense_top1"] for r in rows], "--", label="dense top1")
            chosen = [r for r in val if r.get("best")]
            if chosen:
                ax.axvline(chosen[-1]["global_step"], color="grey", linestyle=":", label="best checkpoint")
            ax.set(xlabel="step", ylabel="validation (%)", ylim=(0, 100))
            ax.legend()
        fig.tight_layout()
        path = self.out / "curves.png"
        tmp = path.with_name("curves.tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(path)
        return path


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
