"""``live``: serve's pipeline for one camera, plus what a person at the terminal watches.

Its flags become a serve config (``one_camera_config``: the same pydantic model as serve.yaml),
run by serve's Service: the stream's snippet clock, the scheduler, the event tracker and the
outputs (sinks/outputs.py) are serve's. What live adds:

    its source     opened by the caller (a camera, a microphone, a file) and handed to the
                   service as it is (``Service.sources``); the run ends with it
    observers      ``on_snippet`` / ``on_result`` / ``on_event`` called in the pipeline's threads
                   (the terminal lines, tests)
    the picture    the caller's thread draws the newest frame with the latest result
                   (sinks/overlay.py) into the frame sinks: a window, an MP4
    the summary    the stream's counters, the sources' and the outputs', at the end

Unlike serve, a snippet is never dropped for being late (one camera: no other stream waits on it).
"""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from ..errors import ConfigError
from ..serve.clock import Snippet
from ..serve.config import ServeConfig, describe
from ..serve.memory import Trimmer
from ..serve.service import Service
from ..sinks.overlay import draw

__all__ = ["LiveLoop", "Snippet", "one_camera_config"]

log = logging.getLogger(__name__)
ONE_CAMERA = {"max_batch": 1, "max_wait_ms": 0.0, "deadline_ms": 600_000.0}   # serve's scheduler section, never late


def one_camera_config(camera: str, source: str, stride: int, settings=None, events: str | None = None,
                      sections: dict | None = None):
    """The serve config of a ``live`` run: one camera, the event settings as its ``detect``, ``events``
    as its JSON lines (started afresh), the output flags' sections (cli/args.py: output_sections)."""
    sections = dict(sections or {})
    web = sections.pop("web", None)
    detect = {"stride": stride}
    if settings is not None:
        detect.update(threshold=settings.threshold, offset_threshold=settings.offset, max_not_heard=settings.hold,
                      min_duration=settings.min_duration,
                      filters={k: {"threshold": v} for k, v in settings.label_thresholds.items()})
    data = {"scheduler": ONE_CAMERA, "detect": detect, "cameras": {camera: {"source": source}},
            "jsonl": {"path": events, "append": False} if events else {"enabled": False},
            **{k: v for k, v in sections.items() if v is not None}}
    if web is not None:
        data["api"] = {"host": web["host"], "port": web["port"], "token": web.get("token")}
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        line, hint = describe(exc)
        raise ConfigError(f"live: {line}", hint=hint) from None


class _Callbacks:
    def __init__(self, on_snippet, on_result, on_event):
        self.on_snippet, self.on_result, self.on_event = on_snippet, on_result, on_event

    def snippet(self, camera, s):
        if self.on_snippet is not None:
            self.on_snippet(s)

    def result(self, camera, r):
        if self.on_result is not None:
            self.on_result(r)

    def event(self, camera, tr):
        if self.on_event is not None:
            self.on_event(tr)


class LiveLoop:
    """``run`` returns the summary once the source ended, ``duration`` passed, a frame sink closed
    (the window) or Ctrl-C came, and only when inference is done: the caller may close the
    Recognizer right after it (the service does not: it is the caller's)."""
    JOIN_TIMEOUT = 5.0

    def __init__(self, recognizer, video, audio=None, *, frame_sinks=(), camera: str = "default",
                 source: str | None = None, settings=None, events: str | None = None, sections: dict | None = None,
                 duration: float | None = None, stats_every: float = 5.0, render_fps: float = 15.0,
                 on_result=None, on_snippet=None, on_event=None):
        self.video, self.audio, self.camera, self.frame_sinks = video, audio, camera, list(frame_sinks)
        self.duration, self.stats_every, self.render_period = duration, stats_every, 1.0 / render_fps
        self.cfg = one_camera_config(camera, source or str(getattr(video, "uri", "synth://")), recognizer.stride,
                                     settings, events, sections)
        self.service = Service(self.cfg, rec=recognizer)
        self.service.sources[camera] = (video, audio)
        self.service.observers.append(_Callbacks(on_snippet, on_result, on_event))

    def run(self) -> dict:
        svc = self.service
        try:
            svc.start(api=self.cfg.api.port is not None, web_only=True)
            if svc.api is not None:
                print(f"web view on http://{svc.api.host}:{svc.api.port}/", flush=True)
            self._watch(svc.get_stream(self.camera))
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            svc.stop(self.JOIN_TIMEOUT)
        st = svc.get_stream(self.camera)
        if st is None:                            # interrupted while starting
            raise KeyboardInterrupt
        error = st.error or svc.scheduler.error
        if error is not None:
            raise error
        st.stats.failed_calls = sum(svc.scheduler.failed_calls.values())
        extra = {"source": self.video.stats, **({"audio": self.audio.stats} if self.audio is not None else {})}
        summary = st.stats.summary(extra)
        summary.update(onsets=st.tracker.published, outputs={w.name: w.counters() for w in (*st.sinks, *svc.shared)},
                       events_settings=st.tracker.settings.to_dict(), audio_source=st.audio_kind)
        return summary

    def _watch(self, st):
        """The caller's thread: the picture and a stats line, until the run ends."""
        start = last_stats = time.monotonic()
        last_index, trimmer = -1, Trimmer()
        while st.status not in ("ended", "failed") and self.service.scheduler.error is None:
            trimmer.tick()                        # freed native memory back to the system (serve/memory.py)
            now = time.monotonic()
            if self.duration is not None and now - start >= self.duration:
                return
            if now - last_stats >= self.stats_every:
                st.stats.failed_calls = sum(self.service.scheduler.failed_calls.values())
                log.info(st.stats.line())
                last_stats = now
            frame = self.video.peek() if self.frame_sinks else None
            if frame is not None and frame.index != last_index:
                last_index = frame.index
                img = draw(frame.image, st.last_result, fps=self.video.stats.get("fps"),
                           latency_ms=st.stats.summary()["latency_p50_ms"], events=[e.label for e in st.tracker.active])
                for sink in self.frame_sinks:
                    sink.write_frame(img)
                    if getattr(sink, "closed", False):
                        return
            time.sleep(self.render_period)
        if st.status == "ended":
            log.info("source ended")
