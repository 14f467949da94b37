"""One live session: sources + recognizer + sinks -> LiveLoop; used by ``live`` and ``demo``."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from ..errors import SourceError
from ..events import EventSettings, EventTracker
from ..sinks.base import Fanout, Worker
from ..sinks.video import DisplaySink, Mp4Sink
from .loop import LiveLoop

log = logging.getLogger(__name__)


def open_audio(video, mic: str | None, no_mic: bool, rate: int):
    """The microphone if asked for; else the source's own track (a network camera's sound, a file's,
    synth://'s); else, for a file or a network stream without sound, None (silence: the picture
    alone); else (a local camera) the default microphone; None with --no-mic."""
    from ..io import Microphone
    if no_mic:
        return None
    if mic is None:
        own = video.audio(rate)
        if own is not None:
            return own
        if getattr(video, "path", None):       # a file without sound: silence, as `run` does, not the room's
            log.warning("%s has no audio track: classifying with silence", video.path)
            return None
        if hasattr(video, "audio_codec"):     # a network stream without (usable) sound: it said so once
            return None
    device = int(mic) if mic is not None and mic.isdigit() else mic
    try:
        return Microphone(device, rate=rate)
    except SourceError as exc:
        raise SourceError(str(exc), hint=(exc.hint or "") + " (or --no-mic to run on the picture alone)") from None


def run_session(recognizer, video, audio, *, display: bool, save: str | None, events: str | None,
                duration: float | None, settings: EventSettings | None = None, camera: str = "default",
                on_result=None, on_event=None, outputs=None) -> tuple[dict, LiveLoop]:
    """Run the live loop with the event tracker (``settings``) and the sinks: JSON lines to
    ``events``, and ``outputs`` (live/outputs.py: MQTT, clips, web view, ROS 2); returns the
    summary (with ``onsets``: events announced, and the outputs' counters) and the loop."""
    from ..sinks.jsonl import JsonlSink
    tracker = EventTracker(recognizer.labels, settings, camera=camera)
    sinks = outputs.sinks if outputs is not None else Fanout()
    if events:
        sinks.add(Worker(JsonlSink(events, media=outputs.media if outputs is not None else None)))
    with contextlib.ExitStack() as stack:
        stack.callback(outputs.close if outputs is not None else sinks.close)   # drained and closed last
        frame_sinks = []
        if display:
            frame_sinks.append(stack.enter_context(DisplaySink()))
        if save:
            frame_sinks.append(stack.enter_context(Mp4Sink(save, fps=video.stats.get("fps") or 15)))
        loop = LiveLoop(recognizer, video, audio, frame_sinks=frame_sinks, sinks=sinks, tracker=tracker,
                        camera=camera, detecting=(lambda: outputs.detect) if outputs is not None else None,
                        duration=duration, on_result=on_result, on_event=on_event)
        if outputs is not None:
            outputs.stats_source = loop.stats
            outputs.start()
        summary = loop.run()
    summary["onsets"] = tracker.published
    summary["outputs"] = {w.name: w.counters() for w in sinks}
    summary["events_settings"] = tracker.settings.to_dict()
    return summary, loop


def write_summary(path: str | Path, summary: dict):
    Path(path).write_text(json.dumps(summary, indent=1, default=float))
