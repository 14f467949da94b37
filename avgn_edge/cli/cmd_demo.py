"""avgn-edge demo: live recognition on synth:// (headless, bounded), checked against its ground truth.

Writes into --out: annotated.mp4, events.jsonl and summary.json. The summary's headline is
event-level, from the same event tracker and metrics as ``avgn-edge eval --stream``
(avgn_edge/events/metrics.py): ``event_recall``, ``event_precision``,
``false_alarms_per_hour`` (extrapolated from a short run: one false alarm in 60 s is 60 an
hour), ``onset_latency_p50_s`` / ``onset_latency_p95_s`` and ``label_accuracy``, with the
counts they come from (``events``, ``detections``, ``matched``, ``false_alarms``,
``duplicates``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..deps import gpu_emulated
from ..errors import InputError
from .args import add_event_arguments, add_runtime_arguments, event_settings, open_recognizer

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of stream (default 60)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic stream (default 7)")
    p.add_argument("--quiet", type=float, help="share of the stream's time with no event (default 0.9)")
    p.add_argument("--stream", metavar="DIR", help="with --bundle home: a folder holding the real-material "
                                                   "stream.mp4 + stream.json (default: the realset module's cache)")
    add_runtime_arguments(p)
    p.add_argument("--stride", type=int, default=2, help="a decision every N snippets (default 2)")
    add_event_arguments(p)


def run(args) -> int:
    from ..data.synth import SynthSpec
    from ..events import METRIC_KEYS, detections_of, event_metrics
    from ..io.synthstream import SynthStream
    from ..live.session import run_session, write_summary

    if args.duration <= 0:
        raise InputError("--duration must be positive")
    event_settings(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec = open_recognizer(args, stride=args.stride)
    settings = event_settings(args, rec.labels, rec.bundle.event_defaults)
    cfg = rec.config
    if cfg.name == "home":                      # real events: a real-material stream, not synth://
        from .demo_home import run_home
        return run_home(args, rec, settings, out)
    video = SynthStream(SynthSpec.for_model(cfg, seed=args.seed), quiet=args.quiet)
    log.info("demo: %.0f s of synth:// (quiet %.0f%% of the time) with %s on %s (%s); writing %s", args.duration,
             100 * video.timeline.quiet, cfg.name, rec.backend.name, args.precision, out)
    announced, latest, seen = [], {"t": None}, {}

    def collect(until: float):
        # the stream keeps only its recent events: the ground truth is collected as it goes
        latest["t"] = until
        for e in video.ground_truth(until=until):
            seen.setdefault(e["t_start"], e)

    with video:
        summary, _ = run_session(rec, video, video.audio(cfg.sample_rate), display=False,
                                 save=str(out / "annotated.mp4"), events=str(out / "events.jsonl"),
                                 duration=args.duration, settings=settings, camera="synth",
                                 on_result=lambda r: collect(r.t), on_event=announced.append)
        end = latest["t"] or video.t0
        collect(end)
    truth = sorted(seen.values(), key=lambda e: e["t_start"])
    window_s = cfg.num_snippets * cfg.snippet_period
    summary.update(event_metrics(truth, detections_of(announced), seconds=end - video.t0, window_s=window_s,
                                 until=end))
    summary.update({"bundle": str(rec.bundle.root), "backend": rec.backend.name, "precision": args.precision,
                    "emulated_gpu": rec.backend.name == "trt" and gpu_emulated(),
                    "ground_truth": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()
                                      if k != "box"} for e in truth]})
    write_summary(out / "summary.json", summary)
    keys = METRIC_KEYS + ("events", "snippets_per_s", "dropped", "latency_p95_ms") + \
        (("emulated_gpu",) if summary["emulated_gpu"] else ())
    print(json.dumps({k: summary[k] for k in keys}))
    return 0
