"""``avgn-edge demo --bundle home``: the home model live on a real-material stream, checked against its
ground truth (the same summary as the synth demo: recall, precision, false alarms per hour, onsets).

The stream (``stream.mp4`` + ``stream.json``: [{label, t_start, t_end}] in stream seconds) is composed
from the real set's TEST packages by the realset module (``avgn_edge.data.realset.stream.ensure_stream``:
built once into its cache, then reused); ``--stream DIR`` or ``$AVGN_EDGE_REALSET_STREAM`` names a
folder that already holds one. The file plays at its own rate, so the demo takes --duration seconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)


def real_stream(folder: str | None = None) -> tuple[Path, list[dict]]:
    """(stream.mp4, ground truth) of the real-material test stream."""
    try:
        from ..data.realset.stream import ensure_stream
    except ImportError:
        ensure_stream = None
    if folder and (Path(folder) / "stream.mp4").is_file() and (Path(folder) / "stream.json").is_file():
        if ensure_stream is not None:
            return ensure_stream(folder)
        events = json.loads((Path(folder) / "stream.json").read_text())["events"]
        return Path(folder) / "stream.mp4", [{"label": e["label"], "t_start": float(e["t_start"]),
                                              "t_end": float(e["t_end"])} for e in events]
    if ensure_stream is None:
        raise InputError("the real-material stream needs the realset module (avgn_edge.data.realset)",
                         hint="or give --stream DIR holding stream.mp4 and stream.json")
    return ensure_stream(folder)


def run_home(args, rec, settings, out: Path) -> int:
    from ..deps import gpu_emulated
    from ..events import METRIC_KEYS, detections_of, event_metrics
    from ..io import open_video
    from ..live.session import open_audio, run_session, write_summary

    cfg = rec.config
    path, truth = real_stream(getattr(args, "stream", None))
    announced, latest = [], {"t": None}
    log.info("demo: %.0f s of the real-material stream %s with %s on %s (%s); writing %s", args.duration, path,
             cfg.name, rec.backend.name, args.precision, out)
    with open_video(str(path)) as video:
        audio = open_audio(video, None, False, cfg.sample_rate)
        t0 = video.t_start
        summary, _ = run_session(rec, video, audio, display=False, save=str(out / "annotated.mp4"),
                                 events=str(out / "events.jsonl"), duration=args.duration, settings=settings,
                                 camera="home", on_result=lambda r: latest.update(t=r.t), on_event=announced.append)
    end = (latest["t"] or t0) - t0
    # the tracker's times are the live clock's: stream seconds + t0
    dets = [{**d, "start_time": d["start_time"] - t0, "t": d["t"] - t0} for d in detections_of(announced)]
    seen = [e for e in truth if e["t_start"] < end]
    window_s = cfg.num_snippets * cfg.snippet_period
    summary.update(event_metrics(seen, dets, seconds=end, window_s=window_s, until=end))
    summary.update({"bundle": str(rec.bundle.root), "stream": str(path), "backend": rec.backend.name,
                    "precision": args.precision, "emulated_gpu": rec.backend.name == "trt" and gpu_emulated(),
                    "ground_truth": seen})
    write_summary(out / "summary.json", summary)
    keys = METRIC_KEYS + ("events", "snippets_per_s", "dropped", "latency_p95_ms")
    print(json.dumps({k: summary.get(k) for k in keys}))
    return 0


def stream_decisions(rec, path, stride: int = 2) -> tuple[list, float]:
    """The recognizer's decisions over a stream file, faster than real time (one snippet per snippet
    period: the frame there and the audio window ending there), and the stream's end in seconds."""
    from ..media import _av, read_snippets

    cfg = rec.config
    with _av().open(str(path)) as container:
        seconds = (container.duration or 0) / 1e6
    n = int(seconds / cfg.snippet_period)
    s = read_snippets(path, n, cfg.sample_rate, cfg.audio_window)
    rec.reset()
    rec.stride = stride
    results = [r for r in (rec.push(frame, audio, float(t)) for frame, audio, t in zip(s.frames, s.audio, s.times))
               if r is not None]
    return results, float(s.times[-1])


def stream_figures(rec, path, truth: list[dict], settings, stride: int = 2) -> dict:
    """``eval --stream`` on the real-material stream file: its decisions (``stream_decisions``)
    through the event tracker; recall, precision, false alarms per hour, onset latency."""
    import time

    from ..events import detections_of, event_metrics
    from ..events.tracker import EventTracker

    cfg = rec.config
    t0 = time.perf_counter()
    results, end = stream_decisions(rec, path, stride)
    tracker = EventTracker(rec.labels, settings, camera="home")
    transitions, carried = [], {}
    for r in results:
        transitions += tracker.update(r)
    transitions += tracker.close(end)
    for tr in transitions:
        if tr.type == "new":
            carried[tr.event.get("carried")] = carried.get(tr.event.get("carried"), 0) + 1
    window_s = cfg.num_snippets * cfg.snippet_period
    out = event_metrics(truth, detections_of(transitions), seconds=end, window_s=window_s, until=end)
    wall = time.perf_counter() - t0
    out.update(stream=str(path), hours=round(end / 3600, 4), stride=stride, carried_at_onset=carried,
               wall_s=round(wall, 1), x_real_time=round(end / max(wall, 1e-9), 1), backend=rec.backend.name)
    return out
