"""Validation during training: the same metrics as ``avgn-edge eval``, the best checkpoint
kept beside the last, and optional early stopping. With ``fuse`` (the ``home`` recipe) each validation after warm-up first
fits the late-fusion weights (model/fusion.py) on the validation clips, so "best" is the best fused model.

Every ``every`` steps and at the end of each stage the model is evaluated on the validation
set (each process a shard, scores gathered, so the metrics are those of the whole set).
``best.safetensors`` is written whenever AVGN's score (``select``: mAP or top-1) beats every
earlier one after warm-up (during warm-up AVGN's head is untrained, so its score means nothing). With ``patience`` P a stage ends early after P validations without a gain in
the score that stage trains: the dense baseline's in warm-up (AVGN's head is not trained
yet), AVGN's afterwards. Validation runs under a forked RNG and touches no generator the
training uses, so a run with validation follows the same trajectory as one without.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..data.split import Subset
from ..errors import InputError
from . import distributed
from .checkpoint import save_checkpoint
from .evaluate import evaluate
from .fusion_fit import fit_fusion

log = logging.getLogger(__name__)


@dataclass
class Validation:
    dataset: object
    every: int = 0                 # steps between validations (0: only at the end of each stage)
    select: str = "map"            # what "best" means: AVGN's "map" or "top1"
    patience: int = 0              # validations without a gain before a stage ends (0: never)
    batch_size: int = 16
    workers: int = 1
    fuse: bool = False             # fit the late-fusion weights on these clips first (fusion_fit.py)

    def __post_init__(self):
        if self.select not in ("map", "top1"):
            raise InputError(f"--select {self.select}: expected map or top1")
        if self.every < 0 or self.patience < 0:
            raise InputError("--val-every and --patience must be >= 0")


class Validator:
    def __init__(self, spec: Validation, d, device, out, state: dict | None = None):
        if len(spec.dataset) < d.world:
            raise InputError(f"the validation set has {len(spec.dataset)} clips, fewer than the {d.world} processes")
        self.spec, self.d, self.device, self.out = spec, d, device, out
        self.shard = Subset(spec.dataset, range(d.rank, len(spec.dataset), d.world)) if d.active else spec.dataset
        st = state or {}
        self.best = st.get("best")                  # {"score", "stage", "step", ...} of best.safetensors
        self.stage_best = st.get("stage_best")
        self.bad = st.get("bad", 0)

    def due(self, step: int, steps: int) -> bool:
        return step + 1 == steps or bool(self.spec.every and (step + 1) % self.spec.every == 0)

    def new_stage(self):
        self.stage_best, self.bad = None, 0

    def run(self, model, stage: str, step: int, global_step: int, provenance: dict) -> tuple[dict, bool]:
        """Evaluate; keep the best checkpoint; return (the row for validation.jsonl, stop this stage?)."""
        sel = self.spec.select
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            fused = fit_fusion(model, self.shard, batch_size=self.spec.batch_size, workers=self.spec.workers,
                               device=self.device, gather=lambda t: distributed.gather(t, self.d)) \
                if self.spec.fuse and stage != "warmup" else None
            r = evaluate(model, self.shard, batch_size=self.spec.batch_size, progress=False,
                         baselines=stage == "warmup", workers=self.spec.workers, device=self.device,
                         gather=lambda t: distributed.gather(t, self.d), costs=False)
        row = {"stage": stage, "step": step + 1, "global_step": global_step, "clips": r["clips"],
               "top1": round(r["top1"], 5), "map": round(r["map"], 5)}
        if fused:
            row["fusion"] = dict(zip(("audio", "glance", "av"), fused))
        if "baselines" in r:
            row.update(dense_top1=round(r["baselines"]["dense"]["top1"], 5),
                       dense_map=round(r["baselines"]["dense"]["map"], 5))
        score = row[sel]
        if stage != "warmup" and (self.best is None or score > self.best["score"]):
            self.best = {"score": score, "select": sel, **row}
            row["best"] = True
            if self.d.main:
                save_checkpoint(self.out / "best.safetensors", model,
                                dict(provenance, selected={"by": f"validation {sel}", **row}))
        monitored = row[f"dense_{sel}" if stage == "warmup" else sel]
        if self.stage_best is None or monitored > self.stage_best:
            self.stage_best, self.bad = monitored, 0
        else:
            self.bad += 1
        stop = bool(self.spec.patience and self.bad >= self.spec.patience)
        if stop:
            log.info("%s: no gain in validation %s for %d validations: stage ends at step %d",
                     stage, sel, self.bad, step + 1)
        return row, stop

    def state(self) -> dict:
        return {"best": self.best, "stage_best": self.stage_best, "bad": self.bad}
