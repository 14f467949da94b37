"""Per-clip wall time of the shipped home bundle, AVGN vs dense, on real clips (bench/clips.py's clip_ratios).

    python scripts/home_clipcost.py DIR_OF_CLASS_FOLDERS [--reps 20]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgn_edge.bench.clips import clip_ratios  # noqa: E402
from avgn_edge.bundle import load_bundle  # noqa: E402
from avgn_edge.data.datasets import open_dataset  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("data")
ap.add_argument("--bundle", default="home")
ap.add_argument("--reps", type=int, default=20)
a = ap.parse_args()
b = load_bundle(a.bundle)
ds = open_dataset(a.data, b.config)
res, ratios = clip_ratios(b, a.bundle, [ds[0], ds[1]], a.reps, 2)
print(json.dumps({"clips_ms": res, "ratios": ratios}, default=float, indent=1))
