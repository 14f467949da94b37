"""Where a clip's time goes in the deployed CPU pipeline: per-span ms (the pipeline's own Timer), p50.

    PYTHONPATH=. python scripts/clip-spans.py [--bundle synth] [--joined] [--clips 300]

Spans: crop_glance (the NumPy glance view), each stage call as the pipeline makes it (with its
hand-off), crop (the NumPy patches); ``--joined``: the opt-in joined graphs (encode, decision).
The per-clip p50 beside the spans' sum shows what runs outside them (ring, checks, Result).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="synth")
    ap.add_argument("--joined", action="store_true")
    ap.add_argument("--clips", type=int, default=300)
    a = ap.parse_args()
    from avgn_edge.bench.presets import drive_config
    from avgn_edge.bundle import load_bundle
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.runtime.ort import OrtBackend
    from avgn_edge.runtime.pipeline import HostPipeline, Timer
    from avgn_edge.runtime.recognizer import Recognizer
    b = load_bundle(a.bundle)
    s = open_dataset("synth:seed=1000,clips=2", drive_config(b.config))[0]
    be = OrtBackend(b, fuse=a.joined)
    pipe = HostPipeline(b, be)
    rec = Recognizer(b, be, pipe)
    for _ in range(50):
        rec.classify_snippets(s.frames, s.audio)
    timer = Timer()
    encode, decide = pipe.encode_batch, pipe.decide_batch
    pipe.encode_batch = lambda items, _t: encode(items, timer)      # every span into one timer
    pipe.decide_batch = lambda rings, _t: decide(rings, timer)
    load, ms = os.getloadavg()[0], []
    for _ in range(a.clips):
        t = time.perf_counter()
        rec.classify_snippets(s.frames, s.audio)
        ms.append((time.perf_counter() - t) * 1e3)
    spans = {k: round(v / a.clips, 3) for k, v in timer.ms.items()}
    print(f"per clip p50 {np.median(ms):.3f} ms; spans (mean ms) {spans}; sum {sum(spans.values()):.3f}; "
          f"load {load:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
