"""avgn-edge quantize BUNDLE --precision fp16|int8 [--calib DIR]: add a measured precision variant."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("bundle", help="bundle folder (written by avgn-edge export)")
    p.add_argument("--precision", required=True, choices=["fp16", "int8"])
    p.add_argument("--calib", help="calibration recipe (.json), folder of videos or synth:... "
                                   "(default: calibration/synth.json)")
    p.add_argument("--eval-data", default="synth:seed=1000,clips=1000",
                   help="data for the accuracy check (default: the benchmark's test split)")
    p.add_argument("--eval-clips", type=int, help="limit the accuracy check to this many clips")


def run(args) -> int:
    from ..precision.quantize import add_variant

    if args.bundle == "synth":
        from ..errors import InputError
        raise InputError("the shipped bundle is read-only", hint="export a copy first: avgn-edge export synth --out B")
    bundle = add_variant(args.bundle, args.precision, args.calib, args.eval_data, args.eval_clips)
    v = bundle.variants[args.precision]
    acc = v["accuracy"]
    for stage, outs in v["stage_error_vs_fp32"].items():
        print(f"{stage:14s} " + "  ".join(f"{k}: {x:.2e}" for k, x in outs.items()))
    print(f"{args.precision}: top-1 {acc['top1'] * 100:.2f}% vs fp32 {bundle.variants['fp32']['accuracy']['top1'] * 100:.2f}% "
          f"({acc['drop_points']:+.2f} points drop, target <= {acc['target_points']}), agreement with fp32 "
          f"{acc['agreement_with_fp32'] * 100:.1f}% on {acc['clips']} clips")
    return 0
