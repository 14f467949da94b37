"""The many-streams search alone (bench/streams.py), replay source, batched and batch 1: for A/B runs
of one change (e.g. with and without this machine's `avgn-edge tune` plan: delete the plan file it
names between the two runs).

    PYTHONPATH=. python scripts/streams-search.py OUT.json [--bundle synth] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bundle", default="synth")
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from avgn_edge.bench.streams import max_realtime_streams
    from avgn_edge.bundle import load_bundle
    from avgn_edge.runtime.plan import load_plan, plan_path
    b = load_bundle(a.bundle)
    t0, before = time.monotonic(), os.getloadavg()[0]
    r = max_realtime_streams(str(b.root), a.seconds, start=16, within=8, source="replay")
    r.update(load_before=before, load_after=os.getloadavg()[0], minutes=round((time.monotonic() - t0) / 60, 1),
             plan=str(plan_path(b, "fp32")) if load_plan(b, "fp32") else None)
    with open(a.out, "w") as f:
        json.dump(r, f, indent=1)
    print(r["max_realtime_streams"], r["max_realtime_streams_batch1"], r["ratio"], "plan:", r["plan"])


if __name__ == "__main__":
    main()
