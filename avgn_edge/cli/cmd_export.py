"""avgn-edge export CHECKPOINT --out BUNDLE: per-stage ONNX graphs + manifest, parity-checked."""

from __future__ import annotations



def add_arguments(p):
    p.add_argument("checkpoint", help="checkpoint file or run folder, or 'synth' (the shipped model)")
    p.add_argument("--out", required=True, help="bundle folder to create")
    p.add_argument("--parity-data", default="synth:seed=1000,clips=16",
                   help="clips whose real stage inputs are used for the parity check (default: 16 test clips)")
    p.add_argument("--force", action="store_true", help="overwrite an existing bundle")


def run(args) -> int:
    from ..export.onnx_export import export_bundle

    bundle = export_bundle(args.checkpoint, args.out, parity_data=args.parity_data, force=args.force)
    parity = bundle.variants["fp32"]["parity"]
    for stage, outputs in parity["stages"].items():
        print(f"{stage:14s} " + "  ".join(f"{o}: " + ", ".join(f"{k}={v:.2e}" for k, v in s.items())
                                          for o, s in outputs.items()))
    e2e = parity["end_to_end"]
    print(f"end to end on {e2e['clips']} clips: max |score diff| {e2e['max_abs_score']:.2e}, "
          f"top-1 agreement {e2e['top1_agreement']:.3f}")
    print(f"bundle: {bundle.root}")
    return 0
