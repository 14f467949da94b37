"""avgn-edge build-engines BUNDLE --precision P [--out DIR] [--workspace MiB] [--force] [--dry-run]."""

from __future__ import annotations

from ..bundle import PRECISIONS


def add_arguments(p):
    p.add_argument("bundle", metavar="BUNDLE", help="model bundle folder, or 'synth' (the shipped one)")
    p.add_argument("--precision", required=True, choices=PRECISIONS, help="which ONNX variant of the bundle to build")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="engine folder (default: engines/, or ~/.cache/avgn-edge/engines if not writable)")
    p.add_argument("--workspace", type=int, default=1024, metavar="MiB",
                   help="TensorRT workspace pool cap (default 1024, safe on Jetson)")
    p.add_argument("--force", action="store_true", help="rebuild even if cached engines are valid")
    p.add_argument("--dry-run", action="store_true", help="show what would be built and why; needs no TensorRT")


def run(args) -> int:
    from ..bundle import load_bundle
    from ..errors import InputError
    from ..trt.build import build_engines, plan, probe_environment
    from ..trt.cache import UNKNOWN

    if args.workspace <= 0:
        raise InputError(f"--workspace must be a positive number of MiB, got {args.workspace}")
    bundle = load_bundle(args.bundle)
    if args.dry_run:
        env = probe_environment()
        items = plan(bundle, args.precision, args.out, args.workspace, args.force, env=env)
        if env.trt_version == UNKNOWN:
            print("dry run: TensorRT is not installed here, so cached engines cannot be validated")
        elif env.problem:
            print(f"dry run: TensorRT {env.trt_version}, but {env.problem}")
        else:
            print(f"dry run: TensorRT {env.trt_version}, {env.gpu_name} (sm {env.compute_capability}), "
                  f"CUDA driver {env.cuda_driver_version}" + (f", L4T {env.l4t_release}" if env.l4t_release else ""))
        print(format_plan(items))
        return 0
    paths = build_engines(bundle, args.precision, args.out, args.workspace, args.force)
    print(f"{len(paths)} engines ready in {paths[0].parent}" if paths else "no stages to build")
    return 0


def format_plan(items) -> str:
    rows = [("stage", "engine", "action", "why")]
    rows += [(i.stage, str(i.engine_path), "HIT" if i.hit else "BUILD", i.reason) for i in items]
    w0, w1 = (max(len(r[k]) for r in rows) for k in (0, 1))
    return "\n".join(f"{a:{w0}s}  {b:{w1}s}  {c:6s} {d}" for a, b, c, d in rows)
