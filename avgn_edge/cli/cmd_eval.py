"""avgn-edge eval: AVGN and its baselines on the same clips, or event-level on a simulated stream.

    avgn-edge eval --checkpoint C --data D [--json]          clips: top-1, mAP, GFLOPs, saliency, patches
    avgn-edge eval --stream --seed S --hours H [--json]      hours of synth:// on a simulated clock through
                                                             the deployed pipeline (--bundle, --backend,
                                                             --precision) and the event tracker: event
                                                             recall/precision, false alarms per hour, onset
                                                             latency, label accuracy; the PyTorch baselines
                                                             (--checkpoint) over the same stream
"""

from __future__ import annotations

import json

from ..data.synth import TEST_DATA
from .args import add_event_arguments, add_runtime_arguments, event_settings, open_recognizer


def add_arguments(p):
    p.add_argument("--checkpoint", default="synth", help="checkpoint file or run folder, or 'synth' (default)")
    p.add_argument("--data", default=TEST_DATA, help=f"evaluation clips (default: the test split {TEST_DATA})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-baselines", action="store_true", help="AVGN only")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="where to evaluate: cpu (default), auto, cuda, cuda:N, mps")
    s = p.add_argument_group("event-level evaluation on a simulated stream (--stream)")
    s.add_argument("--stream", action="store_true", help="evaluate events on hours of synth:// instead of clips")
    s.add_argument("--seed", type=int, default=1000, help="stream seed (default 1000, held out from training)")
    s.add_argument("--hours", type=float, default=1.0, help="hours of stream, simulated (default 1)")
    s.add_argument("--quiet", type=float, help="share of the stream's time with no event (default 0.9)")
    s.add_argument("--noise", type=float, help="stream noise level in [0, 1] (default 0.25)")
    s.add_argument("--distractors", type=float, help="stream distractor density in [0, 1] (default 0.5)")
    s.add_argument("--phase", type=float, default=0.0,
                   help="snippet clock offset from the stream's segments, in snippet periods [0, 1) (default 0)")
    s.add_argument("--stride", type=int, default=2, help="a decision every N snippets (default 2)")
    s.add_argument("--real-stream", metavar="DIR", help="with --bundle home: a folder holding the real-material "
                                                         "stream.mp4 + stream.json (default: the realset module's)")
    add_runtime_arguments(p)
    add_event_arguments(p)


def run(args) -> int:
    result = run_stream(args) if args.stream else run_clips(args)
    print(json.dumps(result) if args.json else (format_stream(result) if args.stream else format_table(result)))
    return 0


def run_clips(args) -> dict:
    from ..data.datasets import open_dataset
    from ..train.checkpoint import load_checkpoint
    from ..train.torch_device import resolve_device
    from ..train.evaluate import evaluate
    model, _ = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data, model.cfg)
    model.to(resolve_device(args.device))
    return evaluate(model, dataset, batch_size=args.batch_size, baselines=not args.no_baselines,
                    progress=not args.json)


def run_stream(args) -> dict:
    from ..events.evaluate import evaluate_recognizer, open_stream, snippet_count

    event_settings(args)
    rec = open_recognizer(args, stride=args.stride)
    settings = event_settings(args, rec.labels, rec.bundle.event_defaults)
    if rec.config.name == "home":           # real events: the real-material test stream, not synth://
        from .demo_home import real_stream, stream_figures
        path, truth = real_stream(getattr(args, "real_stream", None))
        return {**stream_figures(rec, path, truth, settings, args.stride), "precision": args.precision,
                "events_settings": settings.to_dict(), "phase": 0.0}
    snippet_count(rec.config, args.hours)
    knobs = dict(seed=args.seed, quiet=args.quiet, noise=args.noise, distractors=args.distractors)
    timeline = open_stream(rec.config, **knobs)
    uri = "synth://?" + "&".join(f"{k}={v}" for k, v in (("seed", args.seed), ("quiet", timeline.quiet),
                                                          ("noise", timeline.spec.noise),
                                                          ("distractors", timeline.spec.distractors)))
    out = {"stream": uri, "hours": args.hours, "stride": args.stride, "phase": args.phase,
           "bundle": str(rec.bundle.root), "backend": rec.backend.name, "precision": args.precision,
           "events_settings": settings.to_dict(),
           **evaluate_recognizer(rec, timeline, args.hours, settings, phase=args.phase, progress=not args.json)}
    if not args.no_baselines:
        from ..train.checkpoint import load_checkpoint
        from ..train.stream_eval import evaluate_baselines
        model, _ = load_checkpoint(args.checkpoint)
        out["baselines"] = evaluate_baselines(model, open_stream(model.cfg, **knobs), args.hours, args.stride,
                                              settings, phase=args.phase, progress=not args.json)
    return out


def format_table(r: dict) -> str:
    rows = [("AVGN", r["top1"], r["map"], r["gflops_per_clip"])]
    for name, b in (r.get("baselines") or {}).items():
        rows.append((name, b["top1"], b["map"], b["gflops_per_clip"]))
    lines = [f"{'model':16s} {'top-1':>7s} {'mAP':>7s} {'GFLOPs/clip':>12s}"]
    lines += [f"{n:16s} {t * 100:6.1f}% {m * 100:6.1f}% {g:12.4f}" for n, t, m, g in rows]
    if r.get("saliency_precision_at_k") is not None:
        lines.append(f"saliency precision@k {r['saliency_precision_at_k']:.3f}   patch hit rate {r['patch_hit_rate']:.3f}")
    lines.append("GFLOPs by stage: " + ", ".join(f"{k} {v:.4f}" for k, v in r["gflops_by_stage"].items()))
    return "\n".join(lines)


def format_stream(r: dict) -> str:
    def fmt(v, spec, unit=""):
        return format("-", ">" + spec.split(".")[0]) if v is None else format(v, spec) + unit
    head = (f"{'model':16s} {'recall':>7s} {'precision':>9s} {'FA/hour':>8s} {'latency p50':>11s} {'p95':>6s} "
            f"{'label acc':>9s} {'events':>7s} {'detections':>10s}")
    rows = [("AVGN (deployed)", r)] + list((r.get("baselines") or {}).items())
    lines = [f"{r['stream']}, {r['hours']:g} h simulated in {r['wall_s']:.0f} s ({r['x_real_time']}x real time), "
             f"{r['backend']} {r['precision']}", head]
    for name, m in rows:
        lines.append(f"{name:16s} {fmt(m['event_recall'], '7.4f')} {fmt(m['event_precision'], '9.4f')} "
                     f"{fmt(m['false_alarms_per_hour'], '8.2f')} {fmt(m['onset_latency_p50_s'], '10.2f', 's')} "
                     f"{fmt(m['onset_latency_p95_s'], '5.2f', 's')} {fmt(m['label_accuracy'], '9.4f')} "
                     f"{m['events']:7d} {m['detections']:10d}")
    return "\n".join(lines)
