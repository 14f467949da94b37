"""Sound alone through a home bundle: the test split's clips with their frames blacked out.

    python scripts/home_black_picture.py [--bundle home] [--set /work/cache/realav/v2] [--clips 10]

Per label: what the deployed pipeline (ONNX Runtime, FP32) answers on the first clips of that label
when the picture is black, and in how many the label's own score reaches 0.5 (the default onset).
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.runtime.recognizer import Recognizer  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--bundle", default="home")
ap.add_argument("--set", default="/work/cache/realav/v2")
ap.add_argument("--clips", type=int, default=10)
a = ap.parse_args()
rec = Recognizer.load(a.bundle, backend="ort")
ds = open_dataset(f"{a.set}/test", rec.config)
for k, lab in enumerate(rec.labels):
    idx = [i for i, it in enumerate(ds.items) if Path(it.path).parent.name == lab][:a.clips]
    said, onset = Counter(), 0
    for i in idx:
        s = ds[i]
        scores = rec.classify_snippets(np.zeros_like(s.frames), s.audio).scores
        said[rec.labels[int(np.argmax(scores))]] += 1
        onset += float(scores[k]) >= 0.5
    print(f"{lab:12s} clips {len(idx)}  answered {dict(said)}  own score >= 0.5 in {onset}")
