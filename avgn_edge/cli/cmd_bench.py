"""avgn-edge bench [--fast] [--json] [--write-docs]: speed, cost and accuracy, side by side, in one run.

``--preset NAME`` (tiny, synth, paper, ...) times a random-weight bundle of that preset, made on
the fly and cached: the same tables, speed only (no accuracy); ``--write-docs`` then adds its
section to benchmarks.md.

The many-streams search runs twice: on replayed synth:// streams (the service alone), and on
local RTSP cameras with real decoding (bench/rtsp_streams.py: one GStreamer server under the
system python3 loops a recording encoded once; skipped with one line where python3-gi or the
rtsp-server typelib is missing), with the CPU per camera for decode vs inference.

``--soak MINUTES [--soak-streams N]`` instead runs N synth:// streams through the service for
MINUTES and records its RSS over time (``--soak-out FILE`` keeps the JSON).
"""

from __future__ import annotations

import json


def add_arguments(p):
    p.add_argument("--bundle", default="synth", help="bundle (default: the shipped one)")
    p.add_argument("--checkpoint", help="its PyTorch checkpoint, for the eager and dense comparisons (default: the "
                                        "shipped bundle's own, e.g. home for --bundle home; else synth)")
    p.add_argument("--preset", help="time a random-weight bundle of this preset (speed only) instead of --bundle")
    p.add_argument("--backend", default="auto", choices=["auto", "ort", "trt"],
                   help="auto: ONNX Runtime, plus TensorRT when it and a GPU are present")
    p.add_argument("--stride", type=int, default=2, help="snippets per decision in streaming (default 2)")
    p.add_argument("--fast", action="store_true", help="fewer repetitions, shorter live run (under two minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--write-docs", metavar="DIR", help="write benchmarks.md, the plot and the raw JSON into DIR")
    p.add_argument("--note", help="a line printed under the header (e.g. how busy the machine was)")
    p.add_argument("--soak", type=float, metavar="MINUTES", help="only the soak: RSS over MINUTES of many streams")
    p.add_argument("--soak-streams", type=int, default=24, help="streams in the soak (default 24)")
    p.add_argument("--soak-out", metavar="FILE.json", help="write the soak's samples here")


def run(args) -> int:
    import os
    # PyTorch's OpenMP threads otherwise spin after each eager call and slow the next
    # ONNX Runtime call in this interleaved benchmark (ONNX Runtime's spinning is off too)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.soak is not None:
        return _soak(args)
    from ..bench.measure import run as measure
    from ..bench.report import markdown, write_docs
    from ..runtime.backend import trt_available

    backends = {"ort": ("ort",), "trt": ("trt",), "auto": ("ort", "trt") if trt_available()[0] else ("ort",)}
    if args.preset:
        from ..config import get_preset
        get_preset(args.preset)                          # an unknown preset: a one-line error first
    from ..assets import is_shipped
    checkpoint = args.checkpoint or (args.bundle if is_shipped(args.bundle) else "synth")
    res = measure(args.bundle, checkpoint, fast=args.fast, backends=backends[args.backend], stride=args.stride,
                  preset=args.preset)
    if args.note:
        res["note"] = args.note
    if args.write_docs:
        write_docs(res, args.write_docs)
    print(json.dumps(res, default=float) if args.json else markdown(res))
    return 0


def _soak(args) -> int:
    from pathlib import Path

    from ..bench.streams import soak
    from ..errors import InputError
    if args.soak <= 0 or args.soak_streams < 1:
        raise InputError("--soak needs MINUTES > 0 and --soak-streams >= 1")
    res = soak(args.bundle, args.soak_streams, args.soak)
    if args.soak_out:
        Path(args.soak_out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res) if args.json else
          f"soak: {res['streams']} streams, {res['minutes']} min: RSS {res['rss_mb_at_5min']} MB at 5 min, "
          f"{res['rss_mb_at_end']} MB at the end ({res['growth_vs_5min_percent']:+.2f}%)")
    return 0
