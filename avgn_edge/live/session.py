"""One live session: sources + recognizer + the picture's sinks -> LiveLoop; used by ``live`` and ``demo``."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from ..errors import SourceError
from ..events import EventSettings
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
                source: str | None = None, sections: dict | None = None, on_result=None,
                on_event=None) -> tuple[dict, LiveLoop]:
    """The live loop with the picture shown (``display``) and/or saved (``save``), events and
    decisions to ``events`` (JSON lines), and the outputs of ``sections`` (cli/args.py:
    output_sections: MQTT, clips, web view, ROS 2); the summary (with ``onsets``: events
    announced, and the outputs' counters) and the loop."""
    with contextlib.ExitStack() as stack:
        frame_sinks = []
        if display:
            frame_sinks.append(stack.enter_context(DisplaySink()))
        if save:
            frame_sinks.append(stack.enter_context(Mp4Sink(save, fps=video.stats.get("fps") or 15)))
        loop = LiveLoop(recognizer, video, audio, frame_sinks=frame_sinks, camera=camera, source=source,
                        settings=settings, events=events, sections=sections, duration=duration,
                        on_result=on_result, on_event=on_event)
        return loop.run(), loop


def write_summary(path: str | Path, summary: dict):
    Path(path).write_text(json.dumps(summary, indent=1, default=float))
