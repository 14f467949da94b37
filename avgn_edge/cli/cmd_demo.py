"""avgn-edge demo: live recognition on synth:// (headless, bounded), checked against its ground truth.

Writes into --out: annotated.mp4, events.jsonl and summary.json, whose
``events_matched_fraction`` is the share of the stream's events that a decision named
correctly while the event was in the window.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import InputError
from .args import add_runtime_arguments, open_recognizer

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of stream (default 60)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic stream (default 7)")
    add_runtime_arguments(p)
    p.add_argument("--stride", type=int, default=2, help="a decision every N snippets (default 2)")


class EventMatcher:
    """Matches decisions with the stream's ground-truth events as they come (nothing per decision
    is kept; one entry per event of this bounded run): an event is matched when a decision made
    while it was inside the window names it."""

    def __init__(self, video, window_s: float):
        self.video, self.window_s = video, window_s
        self.events: dict[float, dict] = {}      # t_start -> event (the stream itself keeps only recent ones)
        self.matched: set[float] = set()          # t_start of the events named in time
        self.last_t: float | None = None

    def __call__(self, r):
        self.last_t = r.t
        for e in self.video.ground_truth(until=r.t):
            self.events.setdefault(e["t_start"], e)
            if e["t_start"] < r.t <= e["t_end"] + self.window_s and r.label == e["label"]:
                self.matched.add(e["t_start"])

    def summary(self, until: float) -> dict:
        for e in self.video.ground_truth(until=until):
            self.events.setdefault(e["t_start"], e)
        done = [e for e in self.events.values() if e["t_end"] + self.window_s <= until]
        matched = sum(e["t_start"] in self.matched for e in done)
        return {"events": len(done), "events_matched": matched,
                "events_matched_fraction": round(matched / len(done), 4) if done else None}


def run(args) -> int:
    from ..data.synth import SynthSpec
    from ..io.synthstream import SynthStream
    from ..live.session import run_session, write_summary

    if args.duration <= 0:
        raise InputError("--duration must be positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec = open_recognizer(args, stride=args.stride)
    cfg = rec.config
    spec = SynthSpec.for_model(cfg, seed=args.seed)
    T = cfg.num_snippets
    # one event per window, as in training: gaps of at least T snippets between events
    video = SynthStream(spec, gap=(T, T + 3))
    log.info("demo: %.0f s of synth:// with %s on %s (%s); writing %s", args.duration, cfg.name,
             rec.backend.name, args.precision, out)
    matcher = EventMatcher(video, T * cfg.snippet_period)
    with video:
        summary, _ = run_session(rec, video, video.audio(cfg.sample_rate), display=False,
                                 save=str(out / "annotated.mp4"), events=str(out / "events.jsonl"),
                                 duration=args.duration, on_result=matcher)
        end = matcher.last_t if matcher.last_t is not None else video.t0
        summary.update(matcher.summary(end))
    truth = sorted(matcher.events.values(), key=lambda e: e["t_start"])
    from .. import emulator
    summary.update({"bundle": str(rec.bundle.root), "backend": rec.backend.name, "precision": args.precision,
                    "emulated_gpu": rec.backend.name == "trt" and emulator.active(),
                    "ground_truth": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()
                                      if k != "box"} for e in truth]})
    write_summary(out / "summary.json", summary)
    keys = ("events_matched_fraction", "events", "snippets_per_s", "dropped", "latency_p95_ms") + \
        (("emulated_gpu",) if summary["emulated_gpu"] else ())
    print(json.dumps({k: summary[k] for k in keys}))
    return 0
