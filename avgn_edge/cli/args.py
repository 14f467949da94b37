"""Argument groups shared by the commands that run a bundle."""

from __future__ import annotations

import os


def add_runtime_arguments(p, default_precision: str = "fp32"):
    g = p.add_argument_group("model and backend")
    g.add_argument("--bundle", default="synth", help="model bundle folder, or 'synth' (the shipped one; default)")
    g.add_argument("--backend", default="auto", choices=["auto", "ort", "trt", "triton"],
                   help="auto: TensorRT when it and a GPU are present, else ONNX Runtime (default auto); "
                        "triton: a Triton Inference Server at --triton-url")
    g.add_argument("--precision", default=default_precision, choices=["fp32", "fp16", "int8"],
                   help=f"bundle variant to run (default {default_precision})")
    g.add_argument("--engines", help="TensorRT engine cache folder (default engines/)")
    g.add_argument("--triton-url", default=os.environ.get("AVGN_TRITON_URL"), metavar="URL",
                   help="with --backend triton: http://HOST:8000 or grpc://HOST:8001 (default $AVGN_TRITON_URL)")
    g.add_argument("--triton-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a Triton call may take (default 10)")
    g.add_argument("--triton-prefix", default="avgn_", metavar="P",
                   help="the repository's model name prefix (export-triton --prefix; default avgn_)")


def backend_options(args) -> dict:
    """The backend's own options from the command line."""
    if args.backend in ("auto", "trt") and getattr(args, "engines", None):
        return {"engines_dir": args.engines}
    if args.backend == "triton":
        return {"url": args.triton_url, "timeout": args.triton_timeout, "prefix": args.triton_prefix}
    return {}


def open_recognizer(args, **kw):
    from ..runtime.recognizer import Recognizer
    return Recognizer.load(args.bundle, backend=args.backend, precision=args.precision, **backend_options(args), **kw)


def add_event_arguments(p):
    """The event tracker's settings (avgn_edge/events), shared by live, demo, run and eval --stream
    (serve's ``detect:`` section has the same ones)."""
    g = p.add_argument_group("events (when decisions make an event; 'background' never does)")
    g.add_argument("--threshold", type=float, default=0.5, help="onset: a label's score that opens an event (default 0.5)")
    g.add_argument("--label-threshold", action="append", metavar="LABEL=X",
                   help="a label's own onset threshold, e.g. bell-checker=0.7 (repeat, or comma-separate)")
    g.add_argument("--offset-threshold", type=float, metavar="X",
                   help="an open event is heard while its score stays >= X (default: half its onset threshold)")
    g.add_argument("--hold", "--max-not-heard", dest="hold", type=float, default=1.0, metavar="SECONDS",
                   help="an event ends after this long not heard, like Frigate's max_not_heard (default 1.0)")
    g.add_argument("--min-duration", type=float, default=0.0, metavar="SECONDS",
                   help="publish only events heard at least this long (default 0: at the first decision)")


def event_settings(args, labels=None):
    """EventSettings from the flags; checked against ``labels`` when given (InputError)."""
    from ..events import EventSettings, parse_label_thresholds
    s = EventSettings(threshold=args.threshold, label_thresholds=parse_label_thresholds(args.label_threshold),
                      offset=args.offset_threshold, hold=args.hold, min_duration=args.min_duration)
    return s.check(labels) if labels is not None else s
