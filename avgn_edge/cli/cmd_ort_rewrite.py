"""avgn-edge ort-rewrite BUNDLE: ONNX Runtime's rewritten stage graphs (today the log-mel front end's
STFT folded in half), for every precision of the bundle, checked against the graph they rewrite and
timed beside it on this machine; kept where they are as exact and faster (export/ort_rewrites.py).
``export`` and ``quantize`` run it too; TensorRT's graphs are never changed."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("bundle", help="bundle folder (written by avgn-edge export)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timing per stage (default 2)")


def run(args) -> int:
    from ..bundle import load_bundle
    from ..errors import InputError
    from ..export.ort_rewrites import add_ort_rewrites

    if args.bundle in ("synth", "home"):
        raise InputError("the shipped bundle is read-only", hint="export a copy first: avgn-edge export synth --out B")
    bundle = load_bundle(args.bundle)
    result = add_ort_rewrites(bundle, budget_s=args.budget)
    bundle.save()
    for precision, stages in result.items():
        for stage, r in stages.items():
            if "not_applicable" in r:
                print(f"{precision:5s} {stage:13s} {r['rewrite']}: not applicable ({r['not_applicable']})")
                continue
            ms = "  ".join(f"batch {n}: {r['ms']['from'][n]:.3f} -> {r['ms']['rewrite'][n]:.3f} ms" for n in r["ms"]["from"])
            print(f"{precision:5s} {stage:13s} {r['rewrite']}: error {r['error']:.1e} (max {r['max_error']:.0e})  {ms}  "
                  + ("chosen" if r["chosen"] else "not chosen"))
    return 0
