"""The bench result as markdown tables (docs/benchmarks.md) and the accuracy-vs-GFLOPs plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Published AdaFocus-family points (ActivityNet mAP %, GFLOPs per video), from the peers'
# README tables as collected in shared/notes/paper.md section 4. Labelled as published.
PUBLISHED = [("AR-Net", 33.5, 73.8), ("FrameExit", 26.1, 76.1), ("VideoIQ", 28.1, 74.8), ("AdaMML (RGB+audio)", 94.0, 73.9),
             ("ListenToLook", 81.4, 72.3), ("OCSampler", 21.7, 76.9), ("AdaFocusV2 P=96", 17.6, 77.4),
             ("AdaFocusV2 P=128", 27.0, 79.0), ("AdaFocusV2 P=160", 39.0, 79.9), ("NSNet", 26.0, 76.8),
             ("TSQNet", 26.1, 76.6), ("Uni-AdaFocus", 27.2, 80.7)]


def _ms(d):
    return f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}"


def markdown(r: dict) -> str:
    m, c = r["machine"], r["config"]
    out = (["**EMULATED GPU**: the `trt-emulated` rows ran TensorRT's code path on avgn-edge's emulated device "
            "(engines executed by ONNX Runtime on this CPU), not on a GPU: they are not GPU figures.", ""]
           if r.get("emulated_gpu") else [])
    out += [f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['machine']}, VNNI: {m['vnni']}), "
           f"ONNX Runtime {m['onnxruntime']}" + (f", PyTorch {m['torch']} ({m['torch_threads']} threads)" if "torch" in m else "")
           + f"; `avgn-edge bench{' --fast' if r['mode'] == 'fast' else ''}`. T={c['T']}, k={c['k']}, "
           f"frames {c['frame']} px, patches {c['patch']} px, a snippet every {c['snippet_period_s']} s, "
           f"a decision every {c['stride']} snippets.", ""] + ([f"**{r['note']}**", ""] if r.get("note") else [])
    rt = r["ratios"]
    out += ["## Side by side (same run, interleaved; how many times faster the first is)", "",
            "| comparison | ratio | target |", "|---|---|---|",
            f"| AVGN vs dense (local encoder on all T full frames), per clip, ONNX Runtime | {rt.get('avgn_vs_dense', 'n/a')} | ≥ 8 |",
            f"| ONNX Runtime vs PyTorch eager, same model, per clip | {rt.get('ort_vs_torch', 'n/a')} | ≥ 1.5 |",
            f"| INT8 vs FP32, ONNX Runtime on this CPU, per clip | {rt.get('int8_vs_fp32', 'n/a')} | > 1 or the reason |",
            f"| streaming with the feature ring vs re-encoding the window, per decision | {rt.get('ring_vs_reencode', 'n/a')} | |",
            "", "Per-clip timings (p50 / p95 ms): " + ", ".join(f"{k} {_ms(v)}" for k, v in r["clips"]["clip_ms"].items()),
            ""]
    k = r["int8_kernels"]
    out += ["INT8 arithmetic on this CPU, one 512×512 product (p50): FP32 MatMul "
            f"{k['fp32']['p50_ms']:.3f} ms; MatMulInteger with signed activations (s8s8, the symmetric format "
            f"TensorRT wants and our Q/DQ graphs carry) {k['int8_s8s8']['p50_ms']:.3f} ms "
            f"({k['int8_s8s8']['speedup_vs_fp32']}×); with unsigned activations (u8s8, ONNX Runtime's x86 VNNI "
            f"path) {k['int8_u8s8']['p50_ms']:.3f} ms ({k['int8_u8s8']['speedup_vs_fp32']}×). So where INT8 is "
            "slower here, the reason is measured: the TensorRT-format INT8 graph runs on ONNX Runtime's slow s8s8 "
            "kernels on x86; the INT8 variant is for TensorRT, and FP32 is the faster CPU choice.", ""]
    lv = r["live"]
    out += ["## Live loop (synth://, real time, ONNX Runtime FP32)", "",
            "| snippets/s | decisions | dropped | decision latency p50 / p95 (ms, capture → result) | capacity (snippets/s back to back) |",
            "|---|---|---|---|---|",
            f"| {lv['snippets_per_s']} | {lv['decisions']} | {lv['dropped']} | {lv['decision_latency_p50_ms']:.1f} / "
            f"{lv['decision_latency_p95_ms']:.1f} | {lv['capacity']['snippets_per_s']} |", "",
            "Targets: sustains 4 snippets/s with p95 decision latency under 250 ms.", ""]
    st = r.get("streams")
    if st:
        ct = st["clip_throughput"]
        out += ["## Many streams in one process (`serve`'s scheduler, synth:// streams, ONNX Runtime FP32)", "",
                f"Real time = every stream: no snippet dropped, p95 decision latency (capture → result) under "
                f"250 ms, ≥ 95% of the 4 Hz snippet clock; {st['seconds_per_run']} s per run after the window "
                "fills; batched (up to 64 per stage call) and batch 1 measured in turn in the same run; the count "
                "doubles until a run fails, then the bracket is halved to within 1/8.", "",
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
    out += ["## Per-stage latency (p50 / p95 ms, one call)", ""]
    keys = list(r["stages"])
    stages = [s for s in r["stages"][keys[0]]]
    out += ["| stage | " + " | ".join(keys[:-1]) + " |", "|---" * len(keys) + "|"]
    out += [f"| {s} | " + " | ".join(_ms(r["stages"][k][s]) for k in keys[:-1]) + " |" for s in stages]
    crop = r["stages"]["numpy/crop"]
    out += ["", f"Crop on the CPU (NumPy reference of the kernel): glance view {_ms(crop['crop_glance'])}, "
            f"k patches {_ms(crop['crop_patches'])}.", "",
            "| decision (decide + crop + focus + head) | " + " | ".join(_ms(r["decision"][k]["decision"]) for k in r["decision"]) + " |",
            "|---" * (1 + len(r["decision"])) + "|", "", "Memory: " + ", ".join(f"{k} {v} MB" for k, v in r["memory_mb"].items()), ""]
    cost = r["cost"]
    if cost.get("gflops_per_clip"):
        gf = cost["gflops_per_clip"]
        out += ["## Cost and the machine's limit", "",
                f"Peak of this CPU on a large float32 matrix product: {m['peak_gflops']} GFLOP/s.", "",
                "| stage | params | GFLOPs per clip | achieved GFLOP/s (ORT FP32) | % of peak |", "|---|---|---|---|---|"]
        for s in cost["params"]:
            a = cost["achieved_gflops"][s]
            out.append(f"| {s} | {cost['params'][s]:,} | {gf[s]:.4f} | {a} | {100 * a / m['peak_gflops']:.1f}% |")
        out += ["", f"Per clip: AVGN {gf['avgn']:.4f} GFLOPs, dense {gf['dense']:.4f} "
                f"({gf['dense'] / gf['avgn']:.1f}× more). GFLOPs = 10^9 multiply-accumulates, as in the AdaFocus papers.", ""]
    jp = r.get("jetson_prediction")
    if jp:
        out += ["## Jetson Orin: a prediction, not a measurement", "", jp["model"], "",
                "| | " + " | ".join(jp["synth"]) + " |", "|---" * (1 + len(jp["synth"])) + "|"]
        for s in next(iter(jp["synth"].values()))["stages_ms"]:
            out.append(f"| {s} | " + " | ".join(f"{v['stages_ms'][s]:.2f}" for v in jp["synth"].values()) + " |")
        out.append("| **decision** | " + " | ".join(f"**{v['decision_ms']:.2f}**" for v in jp["synth"].values()) + " |")
        if "paper" in jp:
            p = jp["paper"]
            out += ["", f"Paper-size preset ({p['gflops_per_clip']['avgn']:.1f} GFLOPs per clip of 16 snippets): predicted per clip "
                    + ", ".join(f"{k} {16 * (v['stages_ms']['glance_visual'] + v['stages_ms']['glance_audio']) + sum(v['stages_ms'][s] for s in ('decide', 'focus_local', 'head')):.1f} ms"
                                for k, v in p.items() if k != "gflops_per_clip") + "."]
        out += ["", "Measure it on the device: `avgn-edge bench --backend trt` (same tables).", ""]
    acc = r.get("accuracy")
    if acc:
        out += ["## Accuracy vs cost (test split)", "", "| model | top-1 | GFLOPs per clip |", "|---|---|---|",
                f"| AVGN | {100 * acc['top1']:.1f}% | {acc['gflops_per_clip']:.4f} |"]
        out += [f"| {n} | {100 * b['top1']:.1f}% | {b['gflops_per_clip']:.4f} |" for n, b in acc["baselines"].items()]
        out += ["", f"({acc['clips']} clips; precision variants: " + ", ".join(
            f"{p} {100 * a['top1']:.1f}%" for p, a in r["accuracy_by_precision"].items() if a) + ")", ""]
    return "\n".join(out)


def plot(r: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    acc = r["accuracy"]
    pts = [("AVGN (shipped synth)", acc["gflops_per_clip"], acc["top1"])] + [
        (n, v["gflops_per_clip"], v["top1"]) for n, v in acc["baselines"].items()]
    for n, g, t in pts:
        a.scatter(g, 100 * t, s=60 if n.startswith("AVGN") else 30, marker="*" if n.startswith("AVGN") else "o")
        a.annotate(n, (g, 100 * t), textcoords="offset points", xytext=(5, 3), fontsize=8)
    a.set_xscale("log")
    a.set(xlabel="GFLOPs per clip (log)", ylabel="top-1 (%)", title=f"Synthetic benchmark, test split ({acc['clips']} clips)")
    for n, g, m in PUBLISHED:
        b.scatter(g, m, color="tab:gray", s=20)
        b.annotate(n, (g, m), textcoords="offset points", xytext=(4, 2), fontsize=7)
    paper = r.get("jetson_prediction", {}).get("paper")
    if paper:
        b.axvline(paper["gflops_per_clip"]["avgn"], color="tab:red", ls="--")
        b.annotate("avgn-edge paper preset GFLOPs\n(not trained here)", (paper["gflops_per_clip"]["avgn"], 72.5),
                   fontsize=7, color="tab:red", xytext=(4, 0), textcoords="offset points")
    b.set(xlabel="GFLOPs per video", ylabel="ActivityNet mAP (%)", title="Published AdaFocus-family results (published)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_docs(r: dict, folder: str | Path):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "measured").mkdir(exist_ok=True)
    soak = folder / "measured" / "soak.json"          # written by: bench --soak 60 --soak-out docs/measured/soak.json
    if soak.is_file() and "soak" not in r:
        r = {**r, "soak": json.loads(soak.read_text())}
    (folder / "measured" / "bench.json").write_text(json.dumps(r, indent=1, default=float))
    body = markdown(r)
    if r.get("accuracy"):
        plot(r, folder / "accuracy_vs_gflops.png")
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
    avgn-edge bench --fast --json              # the CI smoke run (a few minutes)
    avgn-edge bench --soak 60 --soak-out docs/measured/soak.json   # the soak (then --write-docs shows it)
    avgn-edge bench --backend trt              # on a Jetson: the same tables, measured on TensorRT
    python -m avgn_edge.triton.loadgen --streams 8 --write docs/measured/triton.md    # 8 clients, one Triton
    python -m avgn_edge.archive.bench --clips 300 --write docs/measured/archive.md    # local run vs run --ray
"""
