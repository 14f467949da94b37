"""avgn-edge tune [--bundle B] [--precision P]: measure each stage's ONNX Runtime threads and call size
on this machine; the backend follows the plan from then on (runtime/plan.py)."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("--bundle", default="synth", help="model bundle folder, or 'synth' / 'home' (the shipped ones)")
    p.add_argument("--precision", action="append", choices=["fp32", "fp16", "int8"],
                   help="variant to tune (repeatable; default: every variant the bundle has)")
    p.add_argument("--reps", type=int, default=20, help="calls per measurement at batch 1 (fewer at bigger batches)")
    p.add_argument("--max-batch", type=int, default=64, help="the biggest call size tried (default 64)")
    p.add_argument("--json", action="store_true", help="print the plans and measurements as one JSON object")


def run(args) -> int:
    import json

    from ..bench.tune import tune
    from ..bundle import load_bundle
    from ..errors import InputError
    from ..runtime.plan import writable_plan_dir

    if args.reps < 1 or args.max_batch < 1:
        raise InputError("--reps and --max-batch must be at least 1")
    bundle = load_bundle(args.bundle)
    writable_plan_dir()                 # before minutes of measuring, not after
    precisions = args.precision or bundle.precisions
    missing = [p for p in precisions if p not in bundle.variants]
    if missing:
        raise InputError(f"bundle {bundle.root} has no {', '.join(missing)} variant",
                         hint=f"available: {', '.join(bundle.precisions)}")
    out = {}
    for p in precisions:
        plan, measured, path = tune(bundle, p, args.reps, args.max_batch)
        out[p] = {"plan": plan, "measured": measured, "path": path}
        if args.json:
            continue
        print(f"{p}: ms per item by threads (1 / all cores) and batch; load average {measured['load_average']}")
        for stage, entry in plan.items():
            rows = measured[stage]
            cells = "  ".join(f"{b}: " + " / ".join(f"{rows[t][b]:.3f}" for t in rows) for b in next(iter(rows.values())))
            how = "all cores" if entry["threads"] == 0 else "one thread" + (
                f", all cores from {entry['all_cores_from']} items" if "all_cores_from" in entry else "")
            cap = f", calls of at most {entry['max_call']}" if "max_call" in entry else ""
            print(f"  {stage:14s} -> {how}{cap}   [{cells}]")
        print(f"  plan: {path}")
        print("  (each stage timed alone: check the service with `avgn-edge bench` before keeping it; delete the file "
              "to go back to the built-in rules)")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0
