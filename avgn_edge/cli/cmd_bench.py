"""avgn-edge bench [--fast] [--json] [--write-docs]: speed, cost and accuracy, side by side, in one run."""

from __future__ import annotations

import json


def add_arguments(p):
    p.add_argument("--bundle", default="synth", help="bundle (default: the shipped one)")
    p.add_argument("--checkpoint", default="synth", help="its PyTorch checkpoint, for the eager and dense comparisons")
    p.add_argument("--backend", default="auto", choices=["auto", "ort", "trt"],
                   help="auto: ONNX Runtime, plus TensorRT when it and a GPU are present")
    p.add_argument("--stride", type=int, default=2, help="snippets per decision in streaming (default 2)")
    p.add_argument("--fast", action="store_true", help="fewer repetitions, shorter live run (under two minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--write-docs", metavar="DIR", help="write benchmarks.md, the plot and the raw JSON into DIR")


def run(args) -> int:
    import os
    # PyTorch's OpenMP threads otherwise spin after each eager call and slow the next
    # ONNX Runtime call in this interleaved benchmark (ONNX Runtime's spinning is off too)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..bench.measure import run as measure
    from ..bench.report import markdown, write_docs
    from ..runtime.backend import trt_available

    backends = {"ort": ("ort",), "trt": ("trt",), "auto": ("ort", "trt") if trt_available()[0] else ("ort",)}
    res = measure(args.bundle, args.checkpoint, fast=args.fast, backends=backends[args.backend], stride=args.stride)
    if args.write_docs:
        write_docs(res, args.write_docs)
    print(json.dumps(res, default=float) if args.json else markdown(res))
    return 0
