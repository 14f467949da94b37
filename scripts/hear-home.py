"""Sound-only events through `serve` with the shipped `home` bundle at its tuned event settings:
per class, a local RTSP camera whose picture is black and whose sound is the real set's first ten
test-split clips of that class (tests/serve/test_serve_hear_home.py's camera), 40 s each; prints
and writes the events raised (docs/benchmarks.md, "Cameras that hear").

    PYTHONPATH=. python scripts/hear-home.py --out hear-home.json   # needs the real set (AVGN_REALSET)
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "serve")]

from camera_rigs import camera  # noqa: E402
from serve_rigs import running_service  # noqa: E402
from test_serve_hear_home import black_with_real_sound  # noqa: E402

LABELS = ["vehicle", "speech", "alarm", "glass_break", "dog", "background"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--out", default="hear-home.json")
    a = ap.parse_args()
    out = {}
    for label in LABELS:
        sound = black_with_real_sound(Path(tempfile.mkdtemp()) / "sound.mkv", label)
        with camera(str(sound), "--audio", "aac") as cam:
            with running_service({"model": {"bundle": "home"}, "cameras": {"c": {"source": cam.url}}}) as (svc, _):
                st = svc.get_stream("c")
                time.sleep(a.seconds)
                out[label] = {"new_events": [e["after"]["label"] for e in st.recent_events if e.get("type") == "new"],
                              "decisions": st.stats.decisions}
        print(label, out[label], flush=True)
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
