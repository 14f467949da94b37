"""The live loop: serve's pipeline for one camera, plus a display.

    clock thread      serve's snippet clock: every snippet_period the newest frame and the audio
                      window that ends at that frame's timestamp -> serve's scheduler (a one-slot
                      mailbox: when inference is behind, the waiting snippet is dropped and counted)
    scheduler thread  serve's Scheduler with this loop as its one stream: Recognizer -> Result ->
                      ``on_result`` here: event tracker -> the sinks (avgn_edge/sinks: every decision,
                      event transition and snippet frame, each sink behind its own bounded worker)
    caller's thread   renders the newest frame with the latest result for display / MP4

Capture never blocks on inference: sources keep only their latest frame, the microphone
writes into its own ring from its callback. Unlike serve, a snippet is never dropped for
being late (one camera: no other stream waits on it), and the loop ends with its source.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from types import SimpleNamespace

from ..runtime.result import Result
from ..serve.clock import Snippet, SnippetClock
from ..serve.scheduler import Scheduler
from ..serve.stats import LiveStats
from ..sinks.base import Fanout
from ..sinks.overlay import draw

__all__ = ["LiveLoop", "Snippet"]

log = logging.getLogger(__name__)
ONE_CAMERA = SimpleNamespace(max_batch=1, max_wait_ms=0.0, deadline_ms=math.inf)   # serve's scheduler section


class LiveLoop:
    """``latest`` is the newest Result; every Result goes to the event tracker, the result
    sinks and ``on_result`` and is not kept (a loop may run for months). ``run`` returns only once
    the inference thread is done: the caller may close the Recognizer right after it."""
    JOIN_TIMEOUT = 5.0                        # then the threads are waited for with a log line

    def __init__(self, recognizer, video, audio=None, *, frame_sinks=(), sinks=None, tracker=None,
                 camera: str = "default", detecting=None, duration: float | None = None, stats_every: float = 5.0,
                 audio_wait: float = 0.15, render_fps: float = 15.0, on_result=None, on_snippet=None, on_event=None):
        """``sinks``: a sinks.base.Fanout; ``detecting()``: False while detection is switched off
        (MQTT ``detect/set``): open events end, no new ones open."""
        self.rec, self.video, self.audio = recognizer, video, audio
        self.frame_sinks, self.sinks, self.tracker = list(frame_sinks), sinks or Fanout(), tracker
        self.camera, self.detecting, self.on_event = camera, detecting or (lambda: True), on_event
        self._hop = int(round(recognizer.config.snippet_period * recognizer.config.sample_rate))
        self.duration, self.stats_every, self.audio_wait = duration, stats_every, audio_wait
        self.render_period = 1.0 / render_fps
        self._on_result, self.on_snippet = on_result, on_snippet
        self.cfg = recognizer.config
        self.stats = LiveStats()
        self.latest: Result | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        # what serve's scheduler reads of a stream
        self.name, self.window, self.status = camera, recognizer.window, "online"
        self.drops, self.input_errors = {"mailbox": 0, "deadline": 0}, 0
        self.scheduler = Scheduler(recognizer, ONE_CAMERA, lambda: [self])

    # -- the clock's thread
    def _clock(self):
        clock = SnippetClock(self.video, self.audio, self.cfg.snippet_period, self.cfg.audio_samples,
                             stats=self.stats, audio_wait=self.audio_wait)
        while clock.wait(self._stop):
            s = clock.take()
            if s is None:
                if self.video.eos:
                    log.info("source ended")
                    self._stop.set()
                continue
            if self.on_snippet is not None:
                self.on_snippet(s)
            self.scheduler.post(self, s)
            if self.sinks.wants_frames:                # the frame, and the audio since the last snippet
                self.sinks.frame(self.camera, s.frame, s.audio[-self._hop:] if self.audio is not None else None, s.t)

    # -- the scheduler's thread
    def on_result(self, result: Result, latency_s: float):
        self.stats.decision(result.timings, 1e3 * latency_s)
        with self._lock:
            self.latest = result
        self.sinks.decision(self.camera, result)
        if self._on_result is not None:
            self._on_result(result)
        if self.tracker is not None:
            if self.detecting():
                self._events(self.tracker.update(result))
            elif self.tracker.active:                 # switched off: what is open ends now
                self._events(self.tracker.close(result.t))

    def _events(self, transitions):
        for tr in transitions:
            self.sinks.event(self.camera, tr)
            if self.on_event is not None:
                self.on_event(tr)

    def _guard(self, fn):
        def run():
            try:
                fn()
            except BaseException as exc:          # surface thread failures in run()
                self.error = exc
                self._stop.set()
        return run

    # -- driver
    def run(self) -> dict:
        threads = [threading.Thread(target=self._guard(self._clock), name="avgn-clock", daemon=True)]
        self.scheduler.start()
        for t in threads:
            t.start()
        start = last_stats = time.monotonic()
        last_index = -1
        try:
            while not self._stop.is_set() and self.scheduler.error is None:
                now = time.monotonic()
                self.stats.failed_calls = sum(self.scheduler.failed_calls.values())
                if self.duration is not None and now - start >= self.duration:
                    break
                if now - last_stats >= self.stats_every:
                    log.info(self.stats.line())
                    last_stats = now
                frame = self.video.peek()
                if frame is not None and frame.index != last_index and self.frame_sinks:
                    last_index = frame.index
                    with self._lock:
                        result = self.latest
                    summary = self.stats.summary()
                    active = [e.label for e in self.tracker.active] if self.tracker is not None else []
                    img = draw(frame.image, result, fps=self.video.stats.get("fps"),
                               latency_ms=summary["latency_p50_ms"], events=active)
                    for sink in self.frame_sinks:
                        sink.write_frame(img)
                        if getattr(sink, "closed", False):
                            self._stop.set()
                self._stop.wait(self.render_period)
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            self._stop.set()
            for t in threads:
                t.join(timeout=self.JOIN_TIMEOUT)
            self.scheduler.stop(timeout=self.JOIN_TIMEOUT)
            if self.scheduler.alive:              # inference in flight: the caller may close the Recognizer next
                log.info("waiting for the decision in flight")
                self.scheduler.stop(timeout=None)
        self.stats.failed_calls = sum(self.scheduler.failed_calls.values())
        if (self.error or self.scheduler.error) is not None:
            raise self.error or self.scheduler.error
        if self.tracker is not None:              # the stream stopped: what is open ends
            self._events(self.tracker.close())
        extra = {"source": self.video.stats}
        if self.audio is not None:
            extra["audio"] = self.audio.stats
        return self.stats.summary(extra)
