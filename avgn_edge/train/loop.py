"""Running the recipe: seeded, on any device, across processes, validated, resumable.

The output directory holds ``model.safetensors`` (the latest weights + config, the
checkpoint users pass around), ``best.safetensors`` (with validation: the best so far),
``train_state.pt`` (weights, stage, step, optimizer, scaler and validation state, all on the
CPU; read back with ``torch.load(weights_only=True)``, which refuses arbitrary objects) and
the curves (curves.py). Everything that can fail on bad input - device, batch size, memory -
is checked before the first file is written. With the defaults (one process, CPU, no AMP,
no validation) the run is bit-identical to the recipe's plain loop.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..config import ModelConfig
from ..errors import InputError, SourceError
from ..model import build_model
from . import distributed, features, fewshot
from .batches import loader
from .checkpoint import read_checkpoint, save_checkpoint
from .curves import Curves
from .torch_device import Precision, prepare_model, resolve_device, to_device
from .memory import check_batch_fits, is_out_of_memory, too_large
from .recipe import STAGE_LOSSES, STAGE_LR, Recipe, set_modes, trainable
from .validate import Validation, Validator

log = logging.getLogger(__name__)
CLIP_NORM = 5.0
# DDP's performance note for the audio CNN's one-channel conv (its weight gradient's strides are
# ambiguous for C=1): not actionable, and printed by every process
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
# fp16: the gradient scaler skips the steps whose gradients overflowed (the first ones, while it
# finds its scale); the schedule still advances, as intended
warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")


def _cosine(step: int, total: int, warm: int = 20) -> float:
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


class StageLoss(torch.nn.Module):
    """One stage's losses as a module, so DDP sees the forward pass it synchronises."""

    def __init__(self, model, stage: str, recipe: Recipe):
        super().__init__()
        self.model, self.loss_fn, self.recipe = model, STAGE_LOSSES[stage], recipe

    def forward(self, batch):
        return self.loss_fn(self.model, batch, self.recipe)


def train(cfg, dataset, out: str | Path, recipe: Recipe, seed: int = 0, resume: bool = True,
          workers: int = 1, checkpoint_every: int = 50, provenance: dict | None = None,
          progress: bool = True, init_state: dict | None = None, *, device: str = "cpu", amp: str = "off",
          compile: bool | str = False, channels_last: bool | None = None,
          validation: Validation | None = None, log_every: int = 10) -> Path:
    """Train AVGN on ``dataset``; returns the checkpoint to use (the best one when validating).
    Resumes from ``out`` if it holds a run. Under torchrun, every process calls this."""
    d = distributed.from_env()
    dev = resolve_device(device, d.local_rank, d.world)
    prec = Precision(amp, dev)
    per_process = distributed.split_batch(recipe.batch_size, d)
    if len(dataset) < recipe.batch_size:
        raise InputError(f"the training data has {len(dataset)} clips, fewer than one batch of {recipe.batch_size}",
                         hint="lower --batch-size or add clips")
    out = Path(out)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if init_state:
        model.load_state_dict(init_state, strict=False)
    fewshot.mask_rows(model, recipe.train_rows)
    st = _read_state(out / "train_state.pt", out / "model.safetensors", cfg) if resume else {}
    if st:
        model.load_state_dict(st["model"])
    memory = check_batch_fits(model, per_process, dev, prec)
    _check_writable(out)
    distributed.init(d, dev)
    distributed.check_same_start(*((st["stage"], st["step"]) if st else (0, 0)), d, dev)
    if d.rank:                    # each process its own dropout and random-patch draws
        torch.manual_seed(seed + 1_000_003 * d.rank)
    fill_caches([dataset] + ([validation.dataset] if validation else []), workers, d, progress)
    if features.applies(recipe):      # frozen pretrained glance + local encoders: run them once per clip
        if getattr(dataset, "train_view", None):
            log.warning("frozen-feature training reads each clip once: --augment is not applied")
        dataset = features.FrozenFeatures(dataset, model, recipe, progress=progress and d.main)
    prepare_model(model, dev, channels_last, compile)
    log.debug("memory estimate %s", memory)
    if not resume and d.main:
        _clear_run(out)
    run = _Run(model, dataset, out, recipe, seed, d, dev, prec, per_process, st,
               Validator(validation, d, dev, out, st.get("validation")) if validation else None,
               dict(provenance or {}, device=str(dev), amp=prec.amp, processes=d.world, batch_per_process=per_process),
               workers=workers, progress=progress, checkpoint_every=checkpoint_every, log_every=log_every)
    with logging_redirect_tqdm():
        for si, (stage, steps) in enumerate(recipe.stages):
            if si >= run.start[0] and steps:
                run.stage(si, stage, steps)
    return run.finish()


class _Run:
    """One training run's state between its stages."""

    def __init__(self, model, dataset, out, recipe, seed, d, dev, prec, per_process, st, validator, prov, *,
                 workers, progress, checkpoint_every, log_every):
        self.model, self.dataset, self.out, self.recipe, self.seed = model, dataset, out, recipe, seed
        self.d, self.dev, self.prec, self.per_process, self.st = d, dev, prec, per_process, st
        self.validator, self.prov, self.workers, self.progress = validator, prov, workers, progress
        self.checkpoint_every, self.log_every = checkpoint_every, log_every
        self.ckpt_path, self.state_path = out / "model.safetensors", out / "train_state.pt"
        self.start = (st["stage"], st["step"]) if st else (0, 0)
        self.curves = Curves(out, write=d.main)
        self.offsets = list(itertools.accumulate([0] + [s for _, s in recipe.stages]))
        self.t0 = time.perf_counter() - st.get("elapsed", 0.0)
        if st.get("scaler"):
            prec.scaler.load_state_dict(st["scaler"])
        if st and self.start[0] < len(recipe.stages):
            log.info("resuming at stage %s step %d", recipe.stages[self.start[0]][0], self.start[1])
        elif st:
            log.info("%s holds a finished run: nothing to train", out)

    def stage(self, si: int, stage: str, steps: int):
        model, recipe, d, dev = self.model, self.recipe, self.d, self.dev
        params = trainable(model, stage, recipe.frozen)
        opt = torch.optim.AdamW(params, lr=recipe.lr * STAGE_LR[stage], weight_decay=recipe.weight_decay)
        first = self.start[1] if si == self.start[0] else 0
        if si == self.start[0] and self.st.get("optimizer") is not None:
            opt.load_state_dict(self.st["optimizer"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps), last_epoch=first - 1) \
            if first else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps))
        runner = StageLoss(model, stage, recipe)
        if d.active:
            runner = torch.nn.parallel.DistributedDataParallel(
                runner, device_ids=[dev.index] if dev.type == "cuda" else None, static_graph=True)
        batches = itertools.chain.from_iterable(
            loader(self.dataset, self.per_process, shuffle=True, seed=self.seed * 1000 + si * 100 + first + e,
                   workers=self.workers, rank=d.rank, world=d.world, pin_memory=dev.type == "cuda")
            for e in itertools.count())
        if self.validator and first == 0:
            self.validator.new_stage()
        bar = tqdm(range(first, steps), desc=f"{stage:8s}", initial=first, total=steps,
                   disable=not (self.progress and d.main), dynamic_ncols=True)
        speed = _Speed(recipe.batch_size)
        for step in bar:
            tick = time.perf_counter()
            set_modes(model, stage, recipe.frozen)
            batch = to_device(next(batches), dev)
            fetched = time.perf_counter()
            named = self.step(runner, batch, opt, params)
            sched.step()
            speed.update(time.perf_counter() - tick, fetched - tick)
            bar.set_postfix({**{k: f"{v:.2f}" for k, v in named.items()}, **speed.postfix()}, refresh=False)
            global_step = self.offsets[si] + step + 1
            if (step + 1) % self.log_every == 0 or step + 1 == steps:
                self.curves.loss({"stage": stage, "step": step + 1, **{k: round(v, 4) for k, v in named.items()},
                                  "global_step": global_step, "total": round(sum(named.values()), 4),
                                  "lr": opt.param_groups[0]["lr"], **speed.row()})
            done, validated = step + 1 == steps, False
            if self.validator and self.validator.due(step, steps):
                row, stop = self.validator.run(model, stage, step, global_step, self.prov)
                self.curves.validation(row)
                if d.main:
                    log.info("validation %s step %d: top-1 %.3f, mAP %.3f%s", stage, step + 1, row["top1"],
                             row["map"], " (best so far)" if row.get("best") else "")
                done, validated = done or stop, True
            if done or (step + 1) % self.checkpoint_every == 0:
                self.save((si + 1, 0) if done else (si, step + 1), None if done else opt)
                self.curves.flush(plot=validated or done)
            if done:
                break
        bar.close()

    def step(self, runner, batch, opt, params) -> dict[str, float]:
        """One optimisation step; the losses, averaged over processes."""
        try:
            with self.prec.autocast():
                losses = runner(batch)
                loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            self.prec.backward_and_step(loss, opt, params, CLIP_NORM)
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if is_out_of_memory(exc):
                raise too_large(self.per_process, self.dev, str(exc).split("\n")[0][:160]) from None
            raise
        values = distributed.mean(torch.stack([v.detach().float() for v in losses.values()]), self.d)
        return dict(zip(losses, values.tolist()))

    def save(self, nxt: tuple[int, int], opt):
        if self.d.main:
            save_checkpoint(self.ckpt_path, self.model, self.prov)
            _save_state(self.state_path, self.model, opt, self.prec, nxt, time.perf_counter() - self.t0,
                        self.validator)

    def finish(self) -> Path:
        model, d, v = self.model, self.d, self.validator
        distributed.check_in_sync(model, d, self.dev)
        minutes = (time.perf_counter() - self.t0) / 60
        self.prov.update(train_minutes=round(minutes, 2), torch_threads=torch.get_num_threads())
        if v and v.best:
            self.prov["best"] = {k: val for k, val in v.best.items() if k != "best"}
        if d.main:
            save_checkpoint(self.ckpt_path, model.eval(), self.prov)
            log.info("trained in %.1f min -> %s", minutes, self.ckpt_path)
        distributed.barrier(d)
        best = self.out / "best.safetensors"
        return best if v and v.best and best.is_file() else self.ckpt_path


class _Speed:
    """Clips per second and the share of each step spent waiting for data (smoothed)."""

    def __init__(self, global_batch: int):
        self.batch, self.step_s, self.wait_s = global_batch, None, 0.0

    def update(self, step_s: float, wait_s: float):
        a = 0.1 if self.step_s is not None else 1.0
        self.step_s = (1 - a) * (self.step_s or 0.0) + a * step_s
        self.wait_s = (1 - a) * self.wait_s + a * wait_s

    def row(self) -> dict:
        return {"clips_per_s": round(self.batch / self.step_s, 2), "data_wait": round(self.wait_s / self.step_s, 3)}

    def postfix(self) -> dict:
        r = self.row()
        return {"clips/s": f"{r['clips_per_s']:.1f}", "data": f"{100 * r['data_wait']:.0f}%"}


def fill_caches(datasets, workers: int, d, progress: bool):
    """Decode every clip once into its snippet cache before training. The processes of each
    machine share the work, so a cache on a machine's own disk ends up complete (on a shared
    file system the machines decode the same rows alike)."""
    from ..data.cache import fill
    caches = {id(ds.cache): ds for ds in datasets if getattr(ds, "cache", None) is not None}
    for ds in caches.values():
        r = fill(ds, workers, d.local_rank, d.local_world, progress and d.main)
        if r["undecodable"] == r["clips"]:
            raise SourceError(f"none of the {r['clips']} videos can be decoded", hint="see the warnings above")
        if d.main and r["decoded"]:
            log.info("snippet cache: decoded %d clips at %s clips/s", r["decoded"], r["decode_clips_per_s"])
        if d.main and (r["undecodable"] or r["no_audio"]):
            log.warning("%d of %d videos cannot be decoded (skipped); %d have no audio track (silence)",
                        r["undecodable"], r["clips"], r["no_audio"])


RUN_FILES = ("model.safetensors", "best.safetensors", "train_state.pt", "history.jsonl", "validation.jsonl",
             "curves.png")


def _clear_run(out: Path):
    """Starting over (no resume): an earlier run's files would mix into this one's curves, or
    pass for its best checkpoint."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def _check_writable(out: Path):
    """Fail before training if ``out`` cannot be made (nothing is written until the first checkpoint)."""
    p = out
    while not p.exists() and p != p.parent:
        p = p.parent
    if (p.exists() and not p.is_dir()) or not os.access(p, os.W_OK):
        raise InputError(f"cannot write the run to {out}: {p} is {'not a folder' if p.is_file() else 'not writable'}")


def _read_state(state_path: Path, ckpt_path: Path, cfg) -> dict:
    """The resume state (weights included) of a run in ``out``, checked against ``cfg``; {} if none."""
    if not state_path.is_file():
        return {}
    st = torch.load(state_path, weights_only=True, map_location="cpu")
    if "model" in st:
        saved = ModelConfig.from_dict(json.loads(st["config"]))
    elif ckpt_path.is_file():                 # a run from before the weights went into the state
        st["model"], saved, _ = read_checkpoint(ckpt_path)
    else:
        return {}
    if saved != cfg:
        raise InputError(f"{state_path.parent} holds a run of a different model config",
                         hint="use another --out, or --no-resume to start over there")
    return st


def _cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _save_state(path: Path, model, opt, prec, nxt, elapsed, validator):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"stage": nxt[0], "step": nxt[1], "elapsed": elapsed, "config": model.cfg.to_json(),
                "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                "optimizer": _cpu(opt.state_dict()) if opt else None,
                "scaler": prec.scaler.state_dict() if prec.scaler.is_enabled() else None,
                "validation": validator.state() if validator else None}, tmp)
    tmp.replace(path)
