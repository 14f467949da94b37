"""The bench result as markdown tables, and docs/benchmarks.md composed from every measured section."""

from __future__ import annotations

import json
import os
from pathlib import Path

# per preset: (AVGN vs dense per clip, live snippets/s, live p95 ms); synth's are the project's first targets
TARGETS = {None: ("≥ 8", 4, 250), "paper": ("≥ 3.5", 1, 500)}


def _ms(d):
    return f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}"


def _compat(r: dict) -> dict:
    """Results written before the per-precision live runs and the per-bundle Jetson key read the same."""
    r = dict(r)
    if "snippets_per_s" in r.get("live", {}):
        r["live"] = {"fp32": r["live"]}
    jp = r.get("jetson_prediction")
    if jp and "synth" in jp:
        r["jetson_prediction"] = {**{k: v for k, v in jp.items() if k != "synth"}, "bundle": jp["synth"]}
    ach = r.get("cost", {}).get("achieved_gflops")
    if ach and not isinstance(next(iter(ach.values())), dict):
        r["cost"] = {**r["cost"], "achieved_gflops": {"ort/fp32": ach}}
    return r


def markdown(r: dict) -> str:
    r = _compat(r)
    m, c = r["machine"], r["config"]
    preset = r.get("preset")
    dense_target, live_rate, live_p95 = TARGETS.get(preset, TARGETS[None] if preset in (None, "synth") else ("", None, None))
    out = (["**EMULATED GPU**: the `trt-emulated` rows ran TensorRT's code path on avgn-edge's emulated device "
            "(engines executed by ONNX Runtime on this CPU), not on a GPU: they are not GPU figures.", ""]
           if r.get("emulated_gpu") else [])
    if r.get("random_weights"):
        out += [f"**Random weights**: a `{preset}` bundle made on the fly from PyTorch's initialisation (never trained), "
                "for speed only: no accuracy is measured or implied.", ""]
    cmd = "avgn-edge bench" + (f" --preset {preset}" if preset else "") + (" --fast" if r["mode"] == "fast" else "")
    out += [f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['machine']}, VNNI: {m['vnni']}), "
           f"ONNX Runtime {m['onnxruntime']}" + (f", PyTorch {m['torch']} ({m['torch_threads']} threads)" if "torch" in m else "")
           + f"; `{cmd}`. T={c['T']}, k={c['k']}, frames {c['frame']} px"
           + (f", glance {c['glance']} px" if "glance" in c else "") + f", patches {c['patch']} px, a snippet every "
           f"{c['snippet_period_s']} s, a decision every {c['stride']} snippets."
           + (" 1-minute load average {before} before the run, {after} after (on {cores} cores; other jobs inflate "
              "absolute timings, interleaved ratios less).".format(cores=m["cores"], **r["load_average"])
              if "after" in r.get("load_average", {}) else ""), ""] + (
               [f"**{r['note']}**", ""] if r.get("note") else [])
    out += _ratios(r, dense_target) + _int8_ort(r) + _live(r, live_rate, live_p95) + _streams(r)
    out += _stages(r) + _sessions(r) + _cost(r) + _ops(r) + _jetson(r) + _accuracy(r)
    return "\n".join(out)


def _ratios(r: dict, dense_target: str) -> list[str]:
    rt = r["ratios"]
    rows = [("AVGN vs dense (local encoder on all T full frames), per clip, ONNX Runtime FP32", "avgn_vs_dense", dense_target),
            ("ONNX Runtime vs PyTorch eager, same model, per clip", "ort_vs_torch", "≥ 1.5"),
            ("INT8 vs FP32, ONNX Runtime (its own INT8 graph: u8 activations), per clip", "int8_vs_fp32", "≥ 1.5"),
            ("INT8 vs FP32 with TensorRT's Q/DQ graph (s8 activations) on ONNX Runtime, per clip",
             "int8_tensorrt_graph_vs_fp32", "(for TensorRT)"),
            ("ONNX Runtime's joined graphs (3 calls a clip, glance view in the graph) vs the staged ones "
             "(5 calls, NumPy glance view), per clip, FP32", "joined_vs_staged", ""),
            ("streaming with the feature ring vs re-encoding the window, per decision (FP32)", "ring_vs_reencode", ""),
            ("streaming decision, INT8 vs FP32", "ring_int8_vs_fp32", "")]
    out = ["## Side by side (same run, interleaved; how many times faster the first is)", "",
           "| comparison | ratio | target |", "|---|---|---|"]
    out += [f"| {text} | {rt[k]} | {t} |" for text, k, t in rows if k in rt]
    out += ["", "Per-clip timings (p50 / p95 ms): " + ", ".join(f"{k} {_ms(v)}" for k, v in r["clips"]["clip_ms"].items()), ""]
    k = r["int8_kernels"]
    out += ["INT8 arithmetic on this CPU, one 512×512 product (p50): FP32 MatMul "
            f"{k['fp32']['p50_ms']:.3f} ms; MatMulInteger with signed activations (s8s8, the symmetric format "
            f"TensorRT wants and its Q/DQ graphs carry) {k['int8_s8s8']['p50_ms']:.3f} ms "
            f"({k['int8_s8s8']['speedup_vs_fp32']}×); with unsigned activations (u8s8, ONNX Runtime's fast "
            f"path, which the bundle's `int8-ort` graphs use) {k['int8_u8s8']['p50_ms']:.3f} ms "
            f"({k['int8_u8s8']['speedup_vs_fp32']}×). So `--precision int8` on ONNX Runtime runs the u8 graph; "
            "TensorRT keeps its own symmetric Q/DQ graph.", ""]
    return out


def _int8_ort(r: dict) -> list[str]:
    o = r.get("int8_ort")
    if not o:
        return []
    forms = sorted({f for v in o["candidate_ms"].values() for f in v})
    out = ["## INT8 for ONNX Runtime: the form per stage (measured by `avgn-edge quantize`)", "",
           "Each stage's ONNX Runtime INT8 graph is the fastest of its QDQ form, its QOperator form and FP32, "
           "timed interleaved at the batch a clip sends (T snippets for the glance stages) when the variant "
           "was made (p50 ms):", "", "| stage | " + " | ".join(forms) + " | chosen |", "|---" * (len(forms) + 2) + "|"]
    out += [f"| {s} | " + " | ".join(f"{v.get(f, float('nan')):.3f}" for f in forms) + f" | {o['forms'][s]} |"
            for s, v in o["candidate_ms"].items()]
    return out + [""]


def _live(r: dict, rate, p95) -> list[str]:
    out = ["## Live loop (synth://, real time, ONNX Runtime)", "",
           "| precision | snippets/s | decisions | dropped | decision latency p50 / p95 (ms, capture → result) | "
           "capacity (snippets/s back to back) |", "|---|---|---|---|---|---|"]
    out += [f"| {p} | {lv['snippets_per_s']} | {lv['decisions']} | {lv['dropped']} | "
            f"{lv['decision_latency_p50_ms']:.1f} / {lv['decision_latency_p95_ms']:.1f} | {lv['capacity']['snippets_per_s']} |"
            for p, lv in r["live"].items()]
    return out + ["", f"Targets: sustains {rate} snippets/s with p95 decision latency under {p95} ms." if rate else "", ""]


def _rtsp(rt: dict | None) -> list[str]:
    """The many-streams search with real decoding (bench/rtsp_streams.py), or its one-line skip."""
    if not rt:
        return []
    head = "### RTSP cameras with real decoding (local camera farm, PyAV software decode)"
    if "skipped" in rt:
        return [head, "", f"Not measured: {rt['skipped']}.", ""]
    c, cpu = rt["clip"], rt["cpu_ms_per_camera_s"]
    out = [head, "", f"Each camera: H.264 {c['width']}x{c['height']} {c['fps']} fps + {c['audio']}, one recording "
           "looped by one GStreamer RTSP server (no re-encoding) on 127.0.0.1, over TCP; the same real-time "
           f"criteria, batched, {rt['seconds_per_run']} s per run. CPU per camera per second at "
           f"{rt['cameras_measured']} cameras, by thread (/proc/self/task): decode = the demux thread (demux, "
           "decode, resample, RGB conversion), inference = the scheduler and ONNX Runtime's threads.", "",
           "| max real-time cameras | decode ms/s | inference ms/s | other ms/s | service process ms/s | "
           "camera server ms/s (apart) |", "|---|---|---|---|---|---|",
           f"| **{rt['max_realtime_cameras']}** | {cpu['decode']} | {cpu['inference']} | {cpu['other']} | "
           f"{rt['process_cpu_ms_s']} | {rt['server_cpu_ms_s']} |", "",
           "| cameras | real time | dropped | min snippets/s | latency p50 / p95 (ms) | decode / inference ms per camera-s |",
           "|---|---|---|---|---|---|"]
    out += [f"| {x['streams']} | {'yes' if x['realtime'] else 'no'} | {x['dropped']} | {x['min_snippets_per_s']} | "
            f"{x['latency_p50_ms']} / {x['latency_p95_ms']} | {x['cpu_ms_per_camera_s']['decode']} / "
            f"{x['cpu_ms_per_camera_s']['inference']} |" for x in rt["runs"]]
    return out + [""]


def _streams(r: dict) -> list[str]:
    out = []
    st = r.get("streams")
    if st:
        ct = st["clip_throughput"]
        src = st.get("source", "synth")
        what = (f"synth:// streams replayed from memory ({src}: rendered once, then looped, so the count is "
                "the service's, not the generator's)" if src.startswith("replay") else "synth:// streams rendered live")
        within = st.get("search", {}).get("within", 8)
        out += ["## Many streams in one process (`serve`'s scheduler, ONNX Runtime FP32)", "",
                f"Streams: {what}. Real time = every stream: no snippet dropped, p95 decision latency (capture → result) under "
                f"250 ms, ≥ 95% of the 4 Hz snippet clock; {st['seconds_per_run']} s per run after the window "
                "fills; batched (up to 64 per stage call) and batch 1 measured in turn in the same run; the count "
                f"doubles until a run fails, then the bracket is halved to within 1/{within}.", "",
                "| | max real-time streams |", "|---|---|",
                f"| batched | **{st['max_realtime_streams']}** |",
                f"| batch 1 | {st['max_realtime_streams_batch1']} |",
                f"| ratio | {st['ratio']} |", "",
                "| streams | mode | real time | dropped | min snippets/s | latency p50 / p95 (ms) |",
                "|---|---|---|---|---|---|"]
        out += [f"| {x['streams']} | {x['mode']} | {'yes' if x['realtime'] else 'no'} | {x['dropped']} | "
                f"{x['min_snippets_per_s']} | {x['latency_p50_ms']} / {x['latency_p95_ms']} |" for x in st["runs"]]
        out += ["", f"Clips through `classify_snippets` (the T glance calls as one): batched "
                f"{ct['clips_per_s']['batched']} clips/s, one snippet per call {ct['clips_per_s']['one_per_call']} "
                f"clips/s ({ct['batched_vs_one_per_call']}×, interleaved).", ""]
        out += _rtsp(st.get("rtsp"))
    bs = r.get("batch_scaling_ms_per_item")
    if bs:
        sizes = list(next(iter(bs.values())))
        out += ["## Batch size: ms per item (ONNX Runtime FP32, one call of B items)", "",
                "| stage | " + " | ".join(f"B={b}" for b in sizes) + " |", "|---" * (1 + len(sizes)) + "|"]
        out += [f"| {s} | " + " | ".join(f"{v[b]:.4f}" for b in sizes) + " |" for s, v in bs.items()]
        out.append("")
    soak = r.get("soak")
    if soak:
        marks = [1, 5, 10, 20, 30, 40, 50, 60]
        rows = [next((x for x in soak["samples"] if x["minute"] >= m), None) for m in marks]
        out += [f"## Soak: {soak['streams']} synth:// streams for {soak['minutes']:g} minutes (`avgn-edge bench --soak`)", "",
                "| minute | RSS (MB) | decisions so far | dropped so far |", "|---|---|---|---|"]
        out += [f"| {x['minute']:.1f} | {x['rss_mb']} | {x['decisions']} | {x['dropped']} |" for x in rows if x]
        out += ["", f"RSS at the end vs at 5 minutes: {soak['growth_vs_5min_percent']:+.2f}% (target within ±5%). "
                + soak.get("note", ""), ""]
    return out


def _stages(r: dict) -> list[str]:
    out = ["## Per-stage latency (p50 / p95 ms, one call; `@T`: the T snippets of a clip in one call)", ""]
    keys = [k for k in r["stages"] if k != "numpy/crop"]
    stages = list(r["stages"][keys[0]])
    out += ["| stage | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    out += [f"| {s} | " + " | ".join(_ms(r["stages"][k][s]) for k in keys) + " |" for s in stages]
    crop = r["stages"]["numpy/crop"]
    out += ["", f"Crop on the CPU (NumPy reference of the kernel): glance view {_ms(crop['crop_glance'])}, "
            f"k patches {_ms(crop['crop_patches'])}.", "",
            "| decision (decide + crop + focus + head) | " + " | ".join(_ms(r["decision"][k]["decision"]) for k in r["decision"]) + " |",
            "|---" * (1 + len(r["decision"])) + "|", "", "Memory: " + ", ".join(f"{k} {v} MB" for k, v in r["memory_mb"].items()), ""]
    return out


def _sessions(r: dict) -> list[str]:
    sw = r.get("sessions")
    if not sw:
        return []
    from ..runtime.ort import THREADS_FROM_GMACS
    out = ["## ONNX Runtime session settings per stage (FP32, measured)", "",
           f"The runtime's choice (`session_settings`: all cores for a stage whose item costs ≥ {THREADS_FROM_GMACS} GMACs, else one "
           "thread; sequential; all graph optimisations; arena on) beside one change at a time, interleaved on the "
           "same feeds; each cell is the change's time over the choice's (> 1: the choice is faster).", ""]
    alts = sorted({k for v in sw.values() for b in v.values() if isinstance(b, dict) and "chosen_ms" in b
                   for k in b if k != "chosen_ms"})
    out += ["| stage | batch | threads chosen | chosen (ms) | " + " | ".join(alts) + " |", "|---" * (4 + len(alts)) + "|"]
    for s, v in sw.items():
        for b, row in v.items():
            if b.startswith("batch"):
                out.append(f"| {s} | {b[5:]} | {v['chosen']['threads'] or 'all'} | {row['chosen_ms']:.3f} | "
                           + " | ".join(str(row.get(a, "")) for a in alts) + " |")
    return out + [""]


def _cost(r: dict) -> list[str]:
    m, cost = r["machine"], r["cost"]
    gf = cost.get("gflops_per_clip")
    if not gf:
        return []
    ach = cost["achieved_gflops"]
    cols = list(ach)
    out = ["## Cost and the machine's limit", "",
           f"Peak of this CPU on a large float32 matrix product: {m['peak_gflops']} GFLOP/s. Achieved = 2 × MACs per "
           "call / p50 time (INT8: operations per second, against the same FP32 peak).", "",
           "| stage | params | GFLOPs per clip | " + " | ".join(f"achieved GFLOP/s {k} | % of peak" for k in cols) + " |",
           "|---" * (3 + 2 * len(cols)) + "|"]
    for s in ach[cols[0]]:
        base = s.split("@")[0]
        p = f"{cost['params'][base]:,}" if base == s else ""
        g = f"{gf[base]:.4f}" if base == s else "(same)"
        out.append(f"| {s} | {p} | {g} | " + " | ".join(
            f"{ach[k][s]} | {100 * ach[k][s] / m['peak_gflops']:.1f}%" for k in cols) + " |")
    out += ["", f"Per clip: AVGN {gf['avgn']:.4f} GFLOPs, dense {gf['dense']:.4f} "
            f"({gf['dense'] / gf['avgn']:.1f}× more). GFLOPs = 10^9 multiply-accumulates, as in the AdaFocus papers.", ""]
    return out


def _ops(r: dict) -> list[str]:
    prof = r.get("op_profile")
    if not prof:
        return []
    out = ["## Where each stage's time goes (ONNX Runtime's profile, per kind of operator)", "",
           "Share of the kernels' time, and the GFLOP/s that kind achieves (INT8: operations/s). Depthwise "
           "convolutions do ~9 MACs per value they read: bandwidth-bound, far below the peak; 1x1 and k×k "
           "convolutions are matrix products, near it; `other` is element-wise work, pooling and layout reorders.", "",
           "| stage | precision | kernels (ms) | by kind: share, GFLOP/s |", "|---|---|---|---|"]
    for s, row in prof.items():
        for p, kinds in row.items():
            total = sum(v["ms"] for v in kinds.values())
            out.append(f"| {s} | {p} | {total:.2f} | " + "; ".join(
                f"{k} {100 * v['share']:.0f}%" + (f" at {v['gflops']}" if v["gflops"] else "") for k, v in kinds.items()) + " |")
    return out + [""]


def _jetson(r: dict) -> list[str]:
    jp = r.get("jetson_prediction")
    if not jp:
        return []
    b = jp["bundle"]
    out = ["## Jetson Orin: a prediction, not a measurement", "", jp["model"], "",
           "| | " + " | ".join(b) + " |", "|---" * (1 + len(b)) + "|"]
    for s in next(iter(b.values()))["stages_ms"]:
        out.append(f"| {s} | " + " | ".join(f"{v['stages_ms'][s]:.2f}" for v in b.values()) + " |")
    out.append("| **decision** | " + " | ".join(f"**{v['decision_ms']:.2f}**" for v in b.values()) + " |")
    if "paper" in jp:
        p = jp["paper"]
        out += ["", f"Paper-size preset ({p['gflops_per_clip']['avgn']:.1f} GFLOPs per clip of 16 snippets): predicted per clip "
                + ", ".join(f"{k} {16 * (v['stages_ms']['glance_visual'] + v['stages_ms']['glance_audio']) + sum(v['stages_ms'][s] for s in ('decide', 'focus_local', 'head')):.1f} ms"
                            for k, v in p.items() if k != "gflops_per_clip") + "."]
    return out + ["", "Measure it on the device: `avgn-edge bench --backend trt` (same tables).", ""]


def _accuracy(r: dict) -> list[str]:
    acc = r.get("accuracy")
    if not acc:
        return []
    out = ["## Accuracy vs cost (test split)", "", "| model | top-1 | GFLOPs per clip |", "|---|---|---|",
           f"| AVGN | {100 * acc['top1']:.1f}% | {acc['gflops_per_clip']:.4f} |"]
    out += [f"| {n} | {100 * b['top1']:.1f}% | {b['gflops_per_clip']:.4f} |" for n, b in acc["baselines"].items()]
    out += ["", f"({acc['clips']} clips; precision variants: " + ", ".join(
        f"{p} {100 * a['top1']:.1f}%" for p, a in r["accuracy_by_precision"].items() if a) + ")", ""]
    return out


def write_docs(r: dict, folder: str | Path):
    """The shipped bundle's run -> measured/bench.json (and the plot); a ``--preset`` run ->
    measured/bench-PRESET.json and its section measured/bench-PRESET.md. Then benchmarks.md anew."""
    folder = Path(folder)
    measured = folder / "measured"
    measured.mkdir(parents=True, exist_ok=True)
    if r.get("preset"):
        name = r["preset"]
        (measured / f"bench-{name}.json").write_text(json.dumps(r, indent=1, default=float))
        body = markdown(r).replace("\n## ", "\n### ")
        (measured / f"bench-{name}.md").write_text(f"## Preset `{name}`: random weights, speed only\n\n{body}\n")
    else:
        soak = measured / "soak.json"          # written by: bench --soak 60 --soak-out docs/measured/soak.json
        if soak.is_file() and "soak" not in r:
            r = {**r, "soak": json.loads(soak.read_text())}
        (measured / "bench.json").write_text(json.dumps(r, indent=1, default=float))
        if r.get("accuracy"):
            from .plot import plot
            plot(r, folder / "accuracy_vs_gflops.png")
    render_page(folder)


def render_page(folder: Path):
    """benchmarks.md: the shipped bundle's tables, then every section under measured/ (presets, scale-out)."""
    main = folder / "measured" / "bench.json"
    r = json.loads(main.read_text()) if main.is_file() else None
    body = markdown(r) if r else ""
    if r and r.get("accuracy") and (folder / "accuracy_vs_gflops.png").is_file():
        body += "\n![accuracy vs GFLOPs](accuracy_vs_gflops.png)\n"
    for section in sorted((folder / "measured").glob("*.md")):   # measured by other commands (e.g. scale-out)
        body += "\n" + section.read_text()
    (folder / "benchmarks.md").write_text("# Benchmarks\n\n" + body + REPRODUCE)


def measured_note(command: str, load_before: float) -> str:
    """The line that says where, when and under what load a section was measured, and by what command."""
    from .measure import machine_info
    m = machine_info()
    load = os.getloadavg()[0]
    return (f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['machine']}); `{command}`. The machine "
            f"was shared with other jobs (1-minute load average {load_before:.1f} before, {load:.1f} after, "
            f"on {m['cores']} cores): absolute figures are inflated; rerun to see the spread.")


REPRODUCE = """
## How to reproduce

Timings on a shared machine are noisy: every ratio above comes from one run with the two
sides interleaved; rerun to see the spread.

    ./dev shell
    avgn-edge bench --write-docs docs          # this page, the plot and docs/measured/bench.json (~10 min)
    avgn-edge bench --preset paper --write-docs docs   # a preset's section (random weights, speed only)
    avgn-edge bench --preset tiny --write-docs docs
    avgn-edge bench --fast --json              # the CI smoke run (a few minutes)
    python scripts/speed-bench.py --repeats 3  # joined vs staged graphs per clip, repeated; streams: replay vs live
    avgn-edge bench --soak 60 --soak-out docs/measured/soak.json   # the soak (then --write-docs shows it)
    avgn-edge bench --backend trt              # on a Jetson: the same tables, measured on TensorRT
    python -m avgn_edge.triton.loadgen --streams 8 --write docs/measured/triton.md    # 8 clients, one Triton
    python -m avgn_edge.archive.bench --clips 300 --write docs/measured/archive.md    # local run vs run --ray
"""
