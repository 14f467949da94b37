"""The glance_audio stage's log-mel front end in four forms, per call and per clip, interleaved.

    PYTHONPATH=. python scripts/audio-frontend-bench.py --repeats 3 --out docs/measured/audio-frontend.json

Per call of the stage (ONNX Runtime, sessions set up as OrtBackend's but for the thread count),
at batch 1 (a stream's snippet) and batch T (a clip), on 1 and 2 threads, all forms interleaved:

- ``conv``: the exported graph (the STFT as a strided Conv1d; what TensorRT builds);
- ``folded``: export/logmel_fold.py (what ``avgn-edge ort-rewrite`` writes into the bundle);
- ``stft``: the same front end with ONNX's STFT operator (opset 17) and ReduceSumSquare;
- ``host_rfft``: the log-mel in NumPy (``np.fft.rfft`` of the windowed frames), then the graph from the
  log-mel on (the stage's Conv trunk) in ONNX Runtime.

Per clip: ``Recognizer.classify_snippets`` of the bundle's FP32 and INT8 pipelines with the rewrite
(the bundle as given) and without it (a copy whose manifest points ONNX Runtime back at the
exported graph), interleaved. The bundle must hold chosen rewrites (``avgn-edge ort-rewrite``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def stft_nodes(wave, out, hop, samples, dft, mel):
    """The front end with ONNX's STFT operator (``replace_front_end``'s ``build``)."""
    from avgn_edge.export.logmel_fold import Builder
    g = Builder("/audio/frontend_stft/")
    n_fft = dft.shape[-1]
    signal = g.op("Unsqueeze", wave, g.const([2]))                                   # [batch, samples, 1]
    spec = g.op("STFT", signal, g.const(np.array(hop)),                              # [batch, frames, B, 2]
                g.const(dft[0, 0].astype(np.float32)), g.const(np.array(n_fft)), onesided=1)
    power = g.op("ReduceSumSquare", spec, axes=[3], keepdims=0)                      # [batch, frames, B]
    melT = g.op("MatMul", power, g.const(np.ascontiguousarray(mel.T)))
    g.op("Transpose", melT, perm=[0, 2, 1], out=out)
    return g.nodes, g.inits


def host_form(model, bundle):
    """(NumPy log-mel function, the stage graph from the log-mel on) for ``host_rfft``."""
    import onnx
    from onnx import numpy_helper
    from onnx.utils import Extractor
    g = model.graph
    log_node = next(n for n in g.node if n.op_type == "Log")
    logmel = next(n for n in g.node if log_node.output[0] in n.input).output[0]     # the Unsqueeze after Log
    rest = Extractor(model).extract_model([logmel], [o.name for o in g.output])
    conv = next(n for n in g.node if n.op_type == "Conv")
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"}
    consts.update({i.name: numpy_helper.to_array(i) for i in g.initializer})
    window = consts[conv.input[1]][0, 0]
    mel_mm = next(n for n in g.node if n.op_type == "MatMul" and n.input[0] in consts
                  and consts[n.input[0]].shape[-1] == window.size // 2 + 1)
    mel = consts[mel_mm.input[0]].astype(np.float32)
    cfg = bundle.config

    def log_mel(wave):
        frames = np.lib.stride_tricks.sliding_window_view(wave, window.size, axis=1)[:, ::cfg.hop]
        spec = np.fft.rfft(frames * window, axis=-1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        return np.log(np.matmul(mel, power.transpose(0, 2, 1)) + np.float32(1e-6))[:, None]
    return log_mel, onnx.ModelProto.FromString(rest.SerializeToString()), logmel


def call_forms(bundle, threads_list=(1, 2)) -> dict:
    import onnx

    from avgn_edge.export.logmel_fold import fold_log_mel, replace_front_end
    from avgn_edge.export.ort_rewrites import probe_waves
    from avgn_edge.runtime.ort import open_session, session_settings
    cfg = bundle.config
    exported = onnx.load(str(bundle.stage_path("glance_audio", "fp32")))
    graphs = {"conv": exported, "folded": fold_log_mel(exported), "stft": replace_front_end(exported, stft_nodes)}
    log_mel, rest, logmel_name = host_form(exported, bundle)
    waves = probe_waves(cfg.audio_samples, cfg.sample_rate, cfg.num_snippets)
    fns, check = {}, {}
    for threads in threads_list:
        st = session_settings("glance_audio", "fp32", threads=threads)
        sess = {k: open_session(m.SerializeToString(), st) for k, m in graphs.items()}
        host = open_session(rest.SerializeToString(), st)
        for n in (1, cfg.num_snippets):
            w = waves[:n]
            for k, s in sess.items():
                fns[f"{k}/{threads}t/b{n}"] = (lambda s, w: lambda: s.run(None, {"wave": w}))(s, w)
            fns[f"host_rfft/{threads}t/b{n}"] = (lambda w: lambda: host.run(None, {logmel_name: log_mel(w)}))(w)
        ref = sess["conv"].run(None, {"wave": waves})[0]
        scale = float(np.abs(ref).max())
        check = {k: float(np.abs(s.run(None, {"wave": waves})[0] - ref).max() / scale) for k, s in sess.items()}
        check["host_rfft"] = float(np.abs(host.run(None, {logmel_name: log_mel(waves)})[0] - ref).max() / scale)
    return fns, check


def without_rewrites(bundle, folder: Path):
    """A copy of the bundle whose ONNX Runtime entries point back at the graphs the rewrites came from."""
    from avgn_edge.bundle import load_bundle
    shutil.copytree(bundle.root, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for variant in manifest["variants"].values():
        for stage, record in variant.get("ort", {}).get("rewrites", {}).items():
            variant["ort"]["files"][stage] = record["from"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return load_bundle(folder)


def clip_forms(bundle, before) -> dict:
    from avgn_edge.bench.presets import drive_config
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", drive_config(bundle.config))[0]
    fns = {}
    for precision in [p for p in ("fp32", "int8") if p in bundle.variants]:
        for name, b in (("folded", bundle), ("conv", before)):
            rec = Recognizer.load(b, backend="ort", precision=precision)
            fns[f"clip/{precision}/{name}"] = (lambda r: lambda: r.classify_snippets(clip.frames, clip.audio))(rec)
    return fns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="synth")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reps", type=int, default=200, help="calls per form per repeat")
    ap.add_argument("--clip-reps", type=int, default=100)
    ap.add_argument("--out", default="audio-frontend.json")
    a = ap.parse_args()
    from avgn_edge.bundle import load_bundle
    from avgn_edge.runtime.timing import interleaved, percentiles
    bundle = load_bundle(a.bundle)
    if not any(v.get("ort", {}).get("rewrites", {}).get("glance_audio", {}).get("chosen") for v in bundle.variants.values()):
        raise SystemExit(f"{a.bundle}: no chosen glance_audio rewrite; run avgn-edge ort-rewrite on it first")
    tmp = Path(tempfile.mkdtemp(prefix="avgn-audio-bench-"))
    try:
        before = without_rewrites(bundle, tmp / "before")
        calls, errors = call_forms(bundle)
        clips = clip_forms(bundle, before)
        res = {"bundle": str(bundle.root), "cpus": os.cpu_count(), "error_vs_conv": errors, "repeats": []}
        for i in range(a.repeats):
            load = os.getloadavg()[0]
            t_calls = interleaved(calls, a.reps, warmup=5)
            t_clips = interleaved(clips, a.clip_reps, warmup=3)
            res["repeats"].append({"load_before": load, "load_after": os.getloadavg()[0],
                                   "p50_ms": {k: percentiles(v)["p50_ms"] for k, v in {**t_calls, **t_clips}.items()}})
            print(json.dumps(res["repeats"][-1]), flush=True)
            Path(a.out).write_text(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(res))


def table(res) -> str:
    """Markdown: per form, the p50 of each repeat and the spread (max / min)."""
    keys = list(res["repeats"][0]["p50_ms"])
    loads = " / ".join(f"{r['load_before']:.1f}-{r['load_after']:.1f}" for r in res["repeats"])
    lines = [f"load average per repeat: {loads}", "", "| form | p50 ms per repeat | spread |", "|---|---|---|"]
    for k in keys:
        v = [r["p50_ms"][k] for r in res["repeats"]]
        lines.append(f"| {k} | {' / '.join(f'{x:.3f}' for x in v)} | {max(v) / min(v):.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
