"""avgn-edge train --preset P --data D --out DIR: the three-stage recipe, resumable."""

from __future__ import annotations

import dataclasses
import logging

from ..errors import InputError
from ..data.synth import TRAIN_DATA, WARMUP_DATA

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--preset", default="synth", help="model preset: tiny, synth, paper (default synth)")
    p.add_argument("--data", help="synth:seed=S,clips=N,distractors=D,noise=X,background=B (levels: a value or "
                                   "LO-HI, drawn per clip) or a folder of videos, one sub-folder per class, "
                                   "background/ for nothing happening (default: the preset's recipe data; for "
                                   "synth, the warm-up on " + WARMUP_DATA + ", the rest on " + TRAIN_DATA + ")")
    p.add_argument("--out", required=True, help="run folder (checkpoint, state, history)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--steps", type=float, default=1.0, help="scale every stage's step count (default 1)")
    p.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a run")
    p.add_argument("--workers", type=int, default=1, help="data loading processes (default 1)")
    p.add_argument("--imagenet", metavar="DIR",
                   help="initialise the encoders from torchvision ImageNet weight files in DIR")


def run(args) -> int:
    import torch

    from ..config import get_preset
    from ..data.datasets import VideoFolder, open_dataset
    from ..train.loop import train
    from ..train.recipe import RECIPES

    cfg = get_preset(args.preset)
    if args.steps <= 0:
        raise InputError("--steps must be positive")
    base = RECIPES[cfg.name] if cfg.name in RECIPES else RECIPES["synth"]
    recipe = dataclasses.replace(
        base, warmup_steps=round(base.warmup_steps * args.steps), glance_steps=round(base.glance_steps * args.steps),
        finetune_steps=round(base.finetune_steps * args.steps), batch_size=args.batch_size or base.batch_size)
    phases = recipe.phases(args.data)
    if not phases[-1][1]:
        raise InputError(f"the {cfg.name} preset has no default training data", hint="give --data FOLDER")
    if not (phases[-1][1] == "synth" or phases[-1][1].startswith("synth:")):
        cfg = cfg.replace(labels=VideoFolder(phases[-1][1], cfg).labels)
    datasets = [open_dataset(data, cfg) for _, data in phases]       # bad data fails before training
    init = None
    if args.imagenet:
        from ..model.pretrained import imagenet_state
        init = imagenet_state(cfg, args.imagenet)
    log.info("training %s on %s, recipe %s, %d torch threads", cfg.name,
             " then ".join(f"{d} ({len(ds)} clips)" for (_, d), ds in zip(phases, datasets)), recipe,
             torch.get_num_threads())
    prov = {"preset": cfg.name, "data": phases[-1][1], "seed": args.seed, "recipe": dataclasses.asdict(recipe)}
    if len(phases) > 1:
        prov["warmup_data"] = phases[0][1]
    for i, ((r, _), dataset) in enumerate(zip(phases, datasets)):
        path = train(cfg, dataset, args.out, r, seed=args.seed, resume=i > 0 or not args.no_resume,
                     workers=args.workers, provenance=prov, init_state=init if i == 0 else None)
    print(path)
    return 0
