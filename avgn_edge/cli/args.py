"""Argument groups shared by the commands that run a bundle."""

from __future__ import annotations


def add_runtime_arguments(p, default_precision: str = "fp32"):
    g = p.add_argument_group("model and backend")
    g.add_argument("--bundle", default="synth", help="model bundle folder, or 'synth' (the shipped one; default)")
    g.add_argument("--backend", default="auto", choices=["auto", "ort", "trt"],
                   help="auto: TensorRT when it and a GPU are present, else ONNX Runtime (default auto)")
    g.add_argument("--precision", default=default_precision, choices=["fp32", "fp16", "int8"],
                   help=f"bundle variant to run (default {default_precision})")
    g.add_argument("--engines", help="TensorRT engine cache folder (default engines/)")


def open_recognizer(args, **kw):
    from ..runtime.recognizer import Recognizer
    options = {"engines_dir": args.engines} if args.backend == "trt" and getattr(args, "engines", None) else {}
    return Recognizer.load(args.bundle, backend=args.backend, precision=args.precision, **options, **kw)
