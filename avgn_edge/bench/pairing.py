"""The audio-video pairing error of a camera that shows a white frame and sounds a click at the same
instant (every 2 s): for each flash, the click's onset in the camera's sound minus the flash frame's
time, both on the monotonic clock the snippet clock pairs them on.

    python -m avgn_edge.bench.pairing rtsp://127.0.0.1:PORT/cam [--seconds 30]

The test camera: tests/camera_rigs.py ``click_file`` served by tests/rtsp_camera.py (--audio CODEC).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(uri: str, seconds: float = 30.0, rate: int = 16000, threshold: float = 0.2) -> dict:
    from ..io import open_video
    flashes, clicks = [], set()
    with open_video(uri, camera="pairing") as src:
        audio = src.audio(rate)
        if audio is None:
            raise SystemExit(f"{src.name}: no audio track to measure")
        t0 = polled = time.monotonic()
        while time.monotonic() - t0 < seconds:
            f = src.latest(timeout=1.0)
            if time.monotonic() - polled > 2.0:          # the ring holds 8 s: collect as it goes
                clicks.update(audio.onsets(threshold, t0))
                polled = time.monotonic()
            if f is not None and f.image.mean() > 128 and (not flashes or f.t - flashes[-1] > 1.0):
                flashes.append(f.t)
        clicks.update(audio.onsets(threshold, t0))
        stats = {"audio": audio.stats, "video": src.stats}
    clicks = sorted(clicks)
    errors = []
    for t in flashes:
        near = [c for c in clicks if abs(c - t) < 0.5]
        if near:
            errors.append(1e3 * (min(near, key=lambda c: abs(c - t)) - t))
    e = np.abs(errors)
    return {"flashes": len(flashes), "paired": len(errors), "errors_ms": [round(x, 2) for x in errors],
            "p50_ms": round(float(np.percentile(e, 50)), 2) if len(e) else None,
            "p95_ms": round(float(np.percentile(e, 95)), 2) if len(e) else None,
            "codec": stats["audio"].get("codec"), "audio_gaps": stats["audio"]["gaps"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("uri")
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args(argv)
    print(json.dumps(measure(a.uri, a.seconds)))


if __name__ == "__main__":
    main()
