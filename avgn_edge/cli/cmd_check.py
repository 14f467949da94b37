"""avgn-edge check: the deployed pipeline against PyTorch, in memory and through real MP4 files.

On the benchmark's test split: top-1 agreement of the ONNX Runtime pipeline with the
PyTorch model, and top-1 of the same clips written to MP4 (H.264 + AAC) and read back.
With ``--backend trt``: the TensorRT pipeline instead, and it against ONNX Runtime decision by
decision (a stream of the clips, stride 1: every window start). On the emulated GPU
(AVGN_EMULATE_GPU=1) every result says so: ``device.emulated`` and a visible label.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..deps import gpu_emulated


def add_arguments(p):
    p.add_argument("--bundle", default="synth", help="bundle (default: the shipped one)")
    p.add_argument("--checkpoint", help="the PyTorch checkpoint it came from (default: the shipped bundle's own, "
                                        "e.g. home for --bundle home; else synth)")
    p.add_argument("--data", help="a folder of videos (class sub-folders) instead of the synthetic test split: "
                                  "the files are the MP4 round trip (e.g. the real set's test split for home)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--seed", type=int, default=1000, help="benchmark seed (default 1000, the test split)")
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--backend", default="ort", choices=["ort", "trt"],
                   help="the pipeline checked (trt: also compared with ONNX Runtime at every decision)")
    p.add_argument("--engines", help="TensorRT engine cache folder (default engines/)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--capture", action="store_true",
                   help="only the capture stack: which OpenCV is loaded (GStreamer or not), PyAV, hardware decoders")


def capture_report() -> dict:
    """The capture stack, without the model: which OpenCV (the Jetson trap: PyPI's wheel shadowing
    JetPack's GStreamer build), PyAV and FFmpeg, and the hardware decoders this machine offers."""
    from ..io import hwaccel
    from ..io.video import opencv_report
    out = {"opencv": opencv_report()}
    try:
        import av
        out["pyav"] = {"version": av.__version__, "libavcodec": ".".join(map(str, av.library_versions["libavcodec"]))}
    except ImportError as exc:
        out["pyav"] = {"error": str(exc)}
    out["hwaccel_available"] = hwaccel.available() or ["none (software decode)"]
    return out


def device_report(backend) -> dict:
    """What ran it: the backend, and for TensorRT the GPU, labelled when emulated."""
    out = {"backend": backend.name, "emulated": False}
    if backend.name == "trt":
        from ..trt.build import device_info
        out.update(device_info(), tensorrt=backend.trt.__version__, emulated=gpu_emulated())
    return out


def trt_vs_ort(rec, bundle, dataset, clips: int, precision: str) -> dict:
    from ..runtime.compare import TOLERANCE, compare, decisions, snippet_stream
    from ..runtime.recognizer import Recognizer
    stream = snippet_stream(dataset, clips, bundle.config.snippet_period)
    ort = Recognizer.load(bundle, backend="ort", precision=precision, stride=1, tensorrt_graph=True)  # the same graph
    stride, rec.stride = rec.stride, 1
    try:
        return compare(decisions(rec, *stream), decisions(ort, *stream), TOLERANCE[precision])
    finally:
        rec.stride = stride
        rec.reset()


def run(args) -> int:
    if args.capture:
        rep = capture_report()
        print(json.dumps(rep) if args.json else "\n".join(f"{k}: {v}" for k, v in rep.items()))
        return 0
    import numpy as np
    from tqdm import tqdm

    from ..bundle import load_bundle
    from ..data.datasets import open_dataset
    from ..data.synth import SynthSpec, clip_video
    from ..export.parity import end_to_end_parity
    from ..media import write_video
    from ..runtime.recognizer import Recognizer
    from ..train.checkpoint import load_checkpoint

    from ..assets import is_shipped
    bundle = load_bundle(args.bundle)
    model, _ = load_checkpoint(args.checkpoint or (args.bundle if is_shipped(args.bundle) else "synth"))
    data = args.data or f"synth:seed={args.seed},clips={args.clips}"
    dataset = open_dataset(data, bundle.config)
    if args.data:                     # every n-th file, so that --clips spreads over the classes
        dataset.items = dataset.items[::max(1, len(dataset.items) // args.clips)][:args.clips]
    args.clips = min(args.clips, len(dataset))
    parity = end_to_end_parity(bundle, model, dataset, args.precision)
    options = {"engines_dir": args.engines} if args.backend == "trt" and args.engines else {}
    rec = Recognizer.load(bundle, backend=args.backend, precision=args.precision, **options)
    device = device_report(rec.backend)
    if device["emulated"] and not args.json:
        print("EMULATED GPU (AVGN_EMULATE_GPU=1): TensorRT ran on avgn-edge's emulated device; these are not GPU "
              "figures")
    spec = None if args.data else SynthSpec.for_model(bundle.config, seed=args.seed, clips=args.clips)
    mem, disk = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in tqdm(range(args.clips), desc="mp4 round trip", disable=args.json, dynamic_ncols=True):
            s = dataset[i]
            if args.data:
                path = dataset.items[i].path
            else:
                frames, audio = clip_video(spec, i)
                path = write_video(Path(tmp) / "clip.mp4", frames, spec.fps, audio, spec.sample_rate)
            mem.append(np.argmax(rec.classify_snippets(s.frames, s.audio).scores) == s.label)
            disk.append(np.argmax(rec.classify_clip(path).scores) == s.label)
    out = {"data": data, "precision": args.precision, "device": device,
           "runtime_vs_pytorch_top1_agreement": parity["top1_agreement"],
           "runtime_vs_pytorch_max_abs_score": parity["max_abs_score"], "top1_in_memory": float(np.mean(mem)),
           "top1_from_mp4": float(np.mean(disk)),
           "mp4_loss_points": round(100 * (float(np.mean(mem)) - float(np.mean(disk))), 2)}
    out["capture"] = capture_report()
    if args.backend == "trt":
        out["trt_vs_ort"] = trt_vs_ort(rec, bundle, dataset, min(args.clips, 12), args.precision)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0
