"""Tune a bundle's default event settings (hold, onset thresholds per label) on a VALIDATION stream.

    python scripts/home_thresholds.py B --stream /work/cache/realav/v2val/stream [--write] [--json out.json]

The stream (``avgn-edge realset stream --split val``) goes once through the recognizer; its decisions are
replayed through the tracker under candidate settings (events/tune.py). Prints the figures at the
plain defaults and at the tuned settings; ``--write`` stores the tuned ones in the bundle's manifest
(``provenance.events``: what live, demo, run and eval --stream then use unless flags say otherwise).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgn_edge.bundle import load_bundle  # noqa: E402
from avgn_edge.cli.demo_home import real_stream, stream_decisions  # noqa: E402
from avgn_edge.events import EventSettings  # noqa: E402
from avgn_edge.events.tune import replay, tune  # noqa: E402
from avgn_edge.runtime.recognizer import Recognizer  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("bundle")
ap.add_argument("--stream", required=True, help="a folder with stream.mp4 + stream.json (the validation split's)")
ap.add_argument("--precision", default="fp32")
ap.add_argument("--write", action="store_true", help="store the tuned settings in the bundle's manifest")
ap.add_argument("--json", help="write the figures here")
a = ap.parse_args()
b = load_bundle(a.bundle)
path, truth = real_stream(a.stream)
if json.loads((Path(a.stream) / "stream.json").read_text()).get("split") == "test":
    sys.exit("refusing to tune on a test stream: build a validation one (realset stream --split val)")
rec = Recognizer.load(b, backend="ort", precision=a.precision)
results, end = stream_decisions(rec, path)
window_s = rec.config.num_snippets * rec.config.snippet_period
plain = replay(rec.labels, results, EventSettings(), truth, end=end, window_s=window_s)
best, figures = tune(rec.labels, results, truth, end=end, window_s=window_s)
out = {"stream": str(path), "decisions": len(results), "default": plain, "tuned": figures,
       "settings": best.to_dict()}
print(json.dumps(out, indent=1))
if a.json:
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
if a.write:
    b.provenance["events"] = {**best.to_dict(), "tuned_on": str(a.stream)}
    b.save()
