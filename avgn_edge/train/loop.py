"""Running the recipe: seeded, with progress bars, checkpoints and resume.

The output directory holds ``model.safetensors`` (the latest weights + config, the
checkpoint users pass around) and ``train_state.pt`` (stage, step, optimizer; read back
with ``torch.load(weights_only=True)``, which refuses arbitrary objects).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import InputError
from ..model import build_model
from .batches import loader
from .checkpoint import read_checkpoint, save_checkpoint
from .recipe import STAGE_LOSSES, STAGE_LR, Recipe, set_modes, trainable

log = logging.getLogger(__name__)


def _cosine(step: int, total: int, warm: int = 20) -> float:
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train(cfg, dataset, out: str | Path, recipe: Recipe, seed: int = 0, resume: bool = True,
          workers: int = 1, checkpoint_every: int = 50, provenance: dict | None = None,
          progress: bool = True, init_state: dict | None = None) -> Path:
    """Train AVGN on ``dataset``; returns the checkpoint path. Resumes from ``out`` if it holds a run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if init_state:
        model.load_state_dict(init_state, strict=False)
    state_path, ckpt_path = out / "train_state.pt", out / "model.safetensors"
    start_stage, start_step, opt_state, elapsed = 0, 0, None, 0.0
    if resume and state_path.is_file() and ckpt_path.is_file():
        weights, saved_cfg, _ = read_checkpoint(ckpt_path)
        if saved_cfg != cfg:
            raise InputError(f"{out} holds a run of a different model config",
                             hint="use another --out, or --no-resume to start over there")
        model.load_state_dict(weights)
        st = torch.load(state_path, weights_only=True)
        start_stage, start_step, opt_state = st["stage"], st["step"], st["optimizer"]
        elapsed = st.get("elapsed", 0.0)
        if start_stage < len(recipe.stages):
            log.info("resuming at stage %s step %d", recipe.stages[start_stage][0], start_step)
        else:
            log.info("%s holds a finished run: nothing to train", out)
    history: list[dict] = []
    t0 = time.perf_counter() - elapsed
    for si, (stage, steps) in enumerate(recipe.stages):
        if si < start_stage or steps == 0:
            continue
        params = trainable(model, stage)
        opt = torch.optim.AdamW(params, lr=recipe.lr * STAGE_LR[stage], weight_decay=recipe.weight_decay)
        first = start_step if si == start_stage else 0
        if si == start_stage and opt_state is not None:
            opt.load_state_dict(opt_state)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps), last_epoch=first - 1) \
            if first else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps))
        batches = itertools.chain.from_iterable(
            loader(dataset, recipe.batch_size, shuffle=True, seed=seed * 1000 + si * 100 + first + e,
                   workers=workers) for e in itertools.count())
        loss_fn = STAGE_LOSSES[stage]
        bar = tqdm(range(first, steps), desc=f"{stage:8s}", initial=first, total=steps, disable=not progress,
                   dynamic_ncols=True)
        for step in bar:
            set_modes(model, stage)
            losses = loss_fn(model, next(batches), recipe)
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            bar.set_postfix({k: f"{v.item():.2f}" for k, v in losses.items()}, refresh=False)
            if (step + 1) % 10 == 0:
                history.append({"stage": stage, "step": step + 1, **{k: round(v.item(), 4) for k, v in losses.items()}})
            done = step + 1 == steps
            if done or (step + 1) % checkpoint_every == 0:
                nxt = (si + 1, 0) if done else (si, step + 1)
                _save(model, opt if not done else None, ckpt_path, state_path, nxt, time.perf_counter() - t0,
                      provenance)
                _append(out / "history.jsonl", history)
        bar.close()
    minutes = (time.perf_counter() - t0) / 60
    prov = dict(provenance or {}, train_minutes=round(minutes, 2), torch_threads=torch.get_num_threads())
    save_checkpoint(ckpt_path, model.eval(), prov)
    log.info("trained in %.1f min -> %s", minutes, ckpt_path)
    return ckpt_path


def _append(path: Path, history: list[dict]):
    """Loss history goes out with each checkpoint, so an interrupted run keeps it."""
    with open(path, "a") as f:
        for h in history:
            f.write(json.dumps(h) + "\n")
    history.clear()


def _save(model, opt, ckpt_path, state_path, nxt, elapsed, provenance):
    save_checkpoint(ckpt_path, model, provenance)
    tmp = state_path.with_name(state_path.name + ".tmp")
    torch.save({"stage": nxt[0], "step": nxt[1], "optimizer": opt.state_dict() if opt else None,
                "elapsed": elapsed}, tmp)
    tmp.replace(state_path)
