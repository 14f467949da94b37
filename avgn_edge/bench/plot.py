"""The accuracy-vs-GFLOPs plot of docs/benchmarks.md: the shipped model beside published points."""

from __future__ import annotations

from pathlib import Path

# Published AdaFocus-family points (ActivityNet mAP %, GFLOPs per video), from the peers'
# README tables as collected in shared/notes/paper.md section 4. Labelled as published.
PUBLISHED = [("AR-Net", 33.5, 73.8), ("FrameExit", 26.1, 76.1), ("VideoIQ", 28.1, 74.8), ("AdaMML (RGB+audio)", 94.0, 73.9),
             ("ListenToLook", 81.4, 72.3), ("OCSampler", 21.7, 76.9), ("AdaFocusV2 P=96", 17.6, 77.4),
             ("AdaFocusV2 P=128", 27.0, 79.0), ("AdaFocusV2 P=160", 39.0, 79.9), ("NSNet", 26.0, 76.8),
             ("TSQNet", 26.1, 76.6), ("Uni-AdaFocus", 27.2, 80.7)]


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
