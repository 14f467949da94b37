"""avgn-edge export-triton BUNDLE --out REPO: a Triton model repository (one model per stage + ensembles).

Platforms: ``onnxruntime`` (onnxruntime_onnx, the bundle's graphs; NVIDIA's Triton container),
``tensorrt`` (tensorrt_plan, engines of avgn-edge build-engines, one per GPU kind), ``python``
(Python-backend models running the same graphs with ONNX Runtime: any Triton with the Python
backend, and ``avgn-edge triton-local``). See docs/architecture.md, "Beyond one machine".
"""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("bundle", metavar="BUNDLE", help="model bundle folder, or 'synth'")
    p.add_argument("--out", required=True, metavar="REPO", help="model repository folder (created; models replaced)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"], help="bundle variant (default fp32)")
    p.add_argument("--platform", default="onnxruntime", choices=["onnxruntime", "tensorrt", "python"],
                   help="what the server runs the graphs with (default onnxruntime)")
    p.add_argument("--engines", metavar="DIR", help="--platform tensorrt: the engine folder of avgn-edge build-engines")
    p.add_argument("--version", type=int, default=1, help="model version folder to write (default 1)")
    p.add_argument("--prefix", default="avgn_", help="model name prefix (default avgn_; clients: --triton-prefix)")
    p.add_argument("--queue-delay-us", type=int, default=2000,
                   help="dynamic batching: how long a request may wait for others (default 2000 µs)")
    p.add_argument("--instances", type=int, default=1, help="model instances per stage (python, tensorrt; default 1)")


def run(args) -> int:
    from ..bundle import load_bundle
    from ..triton.repository import export_repository
    bundle = load_bundle(args.bundle)
    models = export_repository(bundle, args.out, args.precision, args.platform, version=args.version,
                               prefix=args.prefix, engines=args.engines, queue_delay_us=args.queue_delay_us,
                               instances=args.instances)
    print(f"wrote {len(models)} models ({args.platform}, {args.precision}, version {args.version}) to {args.out}: "
          + ", ".join(m.name for m in models))
    if args.platform == "python":
        print(f"try it here:  avgn-edge triton-local {args.out}")
    else:
        print(f"serve it:     docker run --rm -p 8000-8002:8000-8002 -v $PWD/{args.out}:/models "
              "nvcr.io/nvidia/tritonserver:<YY.MM>-py3 tritonserver --model-repository=/models")
    print("use it:       avgn-edge run CLIPS --backend triton --triton-url http://127.0.0.1:8000")
    return 0
