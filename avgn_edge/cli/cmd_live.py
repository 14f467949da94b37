"""avgn-edge live --camera 0 [--mic NAME|INDEX]: real-time recognition from a camera and microphone.

Sources are URIs: 0 (camera index), /dev/video0, csi://0, rtsp://..., http://..., a video
file (paced at its own rate; --loop), synth:// (the built-in audio-visual generator).
Audio: --mic (sounddevice name or index), else the source's own track (a network camera's sound,
files, synth://), else the default microphone (local cameras only).

SIGTERM, SIGHUP and SIGINT (Ctrl-C) stop it cleanly, like ``serve``: open events end, clips are
finished, MQTT says ``offline``. A second signal during that stop is ignored.
"""

from __future__ import annotations

import json
import logging
import signal

from .args import (add_event_arguments, add_output_arguments, add_runtime_arguments, event_settings, open_recognizer,
                   output_sections)

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--camera", "--source", dest="source", default="0", metavar="URI",
                   help="video source URI (default 0: the first camera)")
    p.add_argument("--mic", help="microphone name (substring) or index (default: the source's own audio, "
                                 "else the default input device)")
    p.add_argument("--no-mic", action="store_true", help="no audio: silence (the model then sees no sound)")
    p.add_argument("--rtsp-transport", choices=["tcp", "udp"], default="tcp", help="RTSP transport (default tcp)")
    p.add_argument("--hwaccel", choices=["auto", "none", "jetson", "nvdec", "vaapi"], default="none",
                   help="decode network streams in hardware where the box has it (default none: software)")
    add_runtime_arguments(p)
    p.add_argument("--stride", type=int, default=2, help="a decision every N snippets (default 2)")
    p.add_argument("--headless", action="store_true", help="no display window")
    p.add_argument("--save", metavar="OUT.mp4", help="write the annotated video")
    p.add_argument("--events", metavar="EVENTS.jsonl", help="write decisions and event onsets/updates/offsets")
    p.add_argument("--name", default="default", help="the camera/stream name events carry (default 'default')")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--loop", action="store_true", help="loop a file source")
    p.add_argument("--summary", metavar="SUMMARY.json", help="write the run's statistics")
    add_event_arguments(p)
    add_output_arguments(p)


def stop_on_signals():
    """SIGTERM, SIGHUP and SIGINT (even where a launching script set SIGINT to ignored) end the run
    the way Ctrl-C does: KeyboardInterrupt in the main thread, once."""
    fired = []

    def handler(signum, _frame):
        if fired:
            return
        fired.append(signum)
        log.info("%s: stopping", signal.Signals(signum).name)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)


def run(args) -> int:
    from ..io import open_video, parse_video_uri
    stop_on_signals()
    from .args import quiet_native_logs
    quiet_native_logs()
    from ..live.session import open_audio, run_session, write_summary

    from ..serve.memory import limit_arenas
    limit_arenas()                                # before any thread: RSS stays flat (serve/memory.py)
    parse_video_uri(args.source)                  # bad input fails before the model loads
    event_settings(args)
    wanted = output_sections(args)
    rec = open_recognizer(args, stride=args.stride)
    settings = event_settings(args, rec.labels, rec.bundle.event_defaults)
    log.info("bundle %s (%s), backend %s, precision %s", rec.bundle.root, rec.config.name, rec.backend.name,
             args.precision)
    with open_video(args.source, loop=args.loop, camera=args.name, transport=args.rtsp_transport,
                    hwaccel=args.hwaccel) as video:
        audio = open_audio(video, args.mic, args.no_mic, rec.config.sample_rate)
        try:
            summary, _ = run_session(rec, video, audio, display=not args.headless, save=args.save,
                                     events=args.events, duration=args.duration, settings=settings,
                                     camera=args.name, source=args.source, sections=wanted, on_event=_log_event,
                                     on_result=lambda r: log.info("%7.2f  %s", r.t, "  ".join(
                                         f"{l} {s:.2f}" for l, s in r.top(3))))
        finally:
            if audio is not None:
                audio.close()
    log.info("summary: %s", json.dumps({k: v for k, v in summary.items() if k != "stages_ms"}, default=float))
    if not summary.get("decisions") and getattr(video, "path", None):
        window = rec.config.num_snippets * rec.config.snippet_period
        log.warning("%s ended before a full window (%g s of video): no decision (avgn-edge run classifies "
                    "short clips; --loop plays it again)", video.path, window)
    if args.summary:
        write_summary(args.summary, summary)
    return 0


def _log_event(tr):
    e = tr.event
    if tr.type == "new":
        log.info("%7.2f  event %s  %s %.2f", e["start_time"], e["id"], e["label"], e["score"])
    elif tr.type == "end":
        log.info("%7.2f  end   %s  %s, %.2f s, peak %.2f", e["end_time"], e["id"], e["label"],
                 e["end_time"] - e["start_time"], e["top_score"])
