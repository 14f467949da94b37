"""Per-clip ratios (interleaved, repeated) and the many-streams search, the new layout beside the old.

    PYTHONPATH=. python scripts/speed-bench.py --repeats 3 --reps 60 --stream-seconds 8 --out speed.json

Clips: bench/clips.py's interleaved set (AVGN joined and staged FP32, INT8, dense, PyTorch eager,
streaming decisions), ``--repeats`` times, each ratio with its spread. Streams: the real-time
search (bench/streams.py), batched and batch 1: replayed streams on the joined graphs (now), on
the staged graphs, and live-rendered synth:// streams on the staged graphs (before), in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def load_avg() -> float:
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--stream-seconds", type=float, default=8.0)
    ap.add_argument("--no-streams", action="store_true")
    ap.add_argument("--no-clips", action="store_true")
    ap.add_argument("--out", default="speed.json")
    a = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from avgn_edge.bench.clips import clip_ratios
    from avgn_edge.bench.presets import drive_config
    from avgn_edge.bundle import load_bundle
    from avgn_edge.data.datasets import open_dataset
    b = load_bundle("synth")
    clips = [open_dataset("synth:seed=1000,clips=2", drive_config(b.config))[i] for i in range(2)]
    res = {"clips": [], "streams": {}}
    for i in range(0 if a.no_clips else a.repeats):
        before = load_avg()
        table, ratios = clip_ratios(b, "synth", clips, a.reps, 2)
        res["clips"].append({"load_before": before, "load_after": load_avg(), "ratios": ratios,
                             "clip_ms": table["clip_ms"]})
        logging.info("repeat %d: %s", i, ratios)
        json.dump(res, open(a.out, "w"), indent=1)
    if not a.no_streams:
        from avgn_edge.bench.streams import max_realtime_streams
        from avgn_edge.runtime import ort
        for name, source, fuse in (("replay_joined", "replay", True), ("replay_staged", "replay", False),
                                   ("synth_staged", "synth", False)):
            init = ort.OrtBackend.__init__.__wrapped__ if hasattr(ort.OrtBackend.__init__, "__wrapped__") else ort.OrtBackend.__init__

            def patched(self, *args, _init=init, _fuse=fuse, **kw):
                kw.setdefault("fuse", _fuse)
                _init(self, *args, **kw)
            patched.__wrapped__ = init
            ort.OrtBackend.__init__ = patched
            before, t0 = load_avg(), time.monotonic()
            r = max_realtime_streams(str(b.root), a.stream_seconds, start=16, within=8, source=source)
            res["streams"][name] = dict(r, load_before=before, load_after=load_avg(),
                                        minutes=round((time.monotonic() - t0) / 60, 1))
            logging.info("streams %s: %s / %s", name, r["max_realtime_streams"], r["max_realtime_streams_batch1"])
            json.dump(res, open(a.out, "w"), indent=1)
    print(json.dumps({"ratios": [c["ratios"] for c in res["clips"]],
                      "streams": {k: (v["max_realtime_streams"], v["max_realtime_streams_batch1"])
                                  for k, v in res["streams"].items()}}))


if __name__ == "__main__":
    main()
