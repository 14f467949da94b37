"""avgn-edge eval --checkpoint C --data D [--json]: AVGN and its baselines on the same clips."""

from __future__ import annotations

import json


def add_arguments(p):
    p.add_argument("--checkpoint", default="synth", help="checkpoint file or run folder, or 'synth' (default)")
    p.add_argument("--data", default="synth:seed=1000,clips=1000",
                   help="evaluation data (default: the test split synth:seed=1000,clips=1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-baselines", action="store_true", help="AVGN only")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="where to evaluate: cpu (default), auto, cuda, cuda:N, mps")


def run(args) -> int:
    from ..data.datasets import open_dataset
    from ..train.checkpoint import load_checkpoint
    from ..train.evaluate import evaluate

    from ..train.device import resolve_device
    model, _ = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data, model.cfg)
    model.to(resolve_device(args.device))
    result = evaluate(model, dataset, batch_size=args.batch_size, baselines=not args.no_baselines,
                      progress=not args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result))
    return 0


def format_table(r: dict) -> str:
    rows = [("AVGN", r["top1"], r["map"], r["gflops_per_clip"])]
    for name, b in (r.get("baselines") or {}).items():
        rows.append((name, b["top1"], b["map"], b["gflops_per_clip"]))
    lines = [f"{'model':16s} {'top-1':>7s} {'mAP':>7s} {'GFLOPs/clip':>12s}"]
    lines += [f"{n:16s} {t * 100:6.1f}% {m * 100:6.1f}% {g:12.4f}" for n, t, m, g in rows]
    if r.get("saliency_precision_at_k") is not None:
        lines.append(f"saliency precision@k {r['saliency_precision_at_k']:.3f}   patch hit rate {r['patch_hit_rate']:.3f}")
    lines.append("GFLOPs by stage: " + ", ".join(f"{k} {v:.4f}" for k, v in r["gflops_by_stage"].items()))
    return "\n".join(lines)
