"""avgn-edge quantize BUNDLE --precision fp16|int8 [--calib DIR] [--backend all|trt|ort]: add a measured
precision variant. INT8 makes two graphs by default: TensorRT's (symmetric Q/DQ, int8/) and ONNX
Runtime's for CPUs (unsigned activations, its fast integer kernels, int8-ort/); ``--backend`` makes one."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("bundle", help="bundle folder (written by avgn-edge export)")
    p.add_argument("--precision", required=True, choices=["fp16", "int8"])
    p.add_argument("--calib", help="calibration recipe (.json), folder of videos or synth:... "
                                   "(default: calibration/synth.json)")
    p.add_argument("--eval-data", default="synth:seed=1000,clips=1000",
                   help="data for the accuracy check (default: the benchmark's test split)")
    p.add_argument("--eval-clips", type=int, help="limit the accuracy check to this many clips")
    p.add_argument("--backend", default="all", choices=["all", "trt", "ort"],
                   help="int8: the graph for TensorRT, for ONNX Runtime (CPU), or both (default)")
    p.add_argument("--reduce-range", action="store_true",
                   help="int8 for ONNX Runtime: 7-bit weights, for x86 CPUs without VNNI (avoids u8s8 overflow)")


def run(args) -> int:
    from ..precision.quantize import add_variant

    if args.bundle in ("synth", "home"):
        from ..errors import InputError
        raise InputError("the shipped bundle is read-only", hint="export a copy first: avgn-edge export synth --out B")
    bundle = add_variant(args.bundle, args.precision, args.calib, args.eval_data, args.eval_clips,
                         backend=args.backend, reduce_range=args.reduce_range)
    v = bundle.variants[args.precision]
    fp32 = bundle.variants["fp32"]["accuracy"]["top1"]
    arms = ([("TensorRT graph", v)] if args.backend in ("all", "trt") or args.precision == "fp16" else []) + (
        [("ONNX Runtime graph", v["ort"])] if args.precision == "int8" and args.backend in ("all", "ort") else [])
    for name, entry in arms:
        acc = entry["accuracy"]
        print(f"{args.precision} ({name})")
        for stage, outs in entry["stage_error_vs_fp32"].items():
            form = f" [{entry['forms'][stage]}]" if "forms" in entry else ""
            print(f"  {stage:14s} " + "  ".join(f"{k}: {x:.2e}" for k, x in outs.items()) + form)
        print(f"  top-1 {acc['top1'] * 100:.2f}% vs fp32 {fp32 * 100:.2f}% ({acc['drop_points']:+.2f} points drop, "
              f"target <= {acc['target_points']}), agreement with fp32 {acc['agreement_with_fp32'] * 100:.1f}% "
              f"on {acc['clips']} clips")
    return 0
