"""The live loop: a snippet clock, an inference thread and the sinks, over any sources.

    clock thread      every snippet_period: the newest frame, and the audio window that ends
                      at that frame's timestamp -> a one-slot queue (when inference is behind,
                      the waiting snippet is dropped and counted: never an unbounded backlog)
    inference thread  Recognizer.push -> Result -> event tracker -> the sinks (avgn_edge/sinks: every
                      decision, event transition and snippet frame, each sink behind its own
                      bounded worker), stats, latest result
    caller's thread   renders the newest frame with the latest result for display / MP4

Capture never blocks on inference: sources keep only their latest frame, the microphone
writes into its own ring from its callback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ..errors import BackendError
from ..runtime.result import Result
from ..sinks.base import Fanout
from .clock import Snippet, SnippetClock
from .overlay import draw
from .stats import LiveStats

__all__ = ["LiveLoop", "Snippet"]

log = logging.getLogger(__name__)


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
        self.on_result, self.on_snippet = on_result, on_snippet
        self.cfg = recognizer.config
        self.stats = LiveStats()
        self.latest: Result | None = None
        self._queue: queue.Queue[Snippet] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self._failing = False

    # -- producer
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
            if s.restart:
                self._put(None)                       # tells the consumer to reset
            self._put(s)

    def _put(self, item):
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            try:
                dropped = self._queue.get_nowait()
                if dropped is not None:
                    self.stats.dropped += 1
            except queue.Empty:
                pass
            self._queue.put_nowait(item)

    # -- consumer
    def _infer(self):
        while not self._stop.is_set():
            try:
                s = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if s is None:
                self.rec.reset()
                continue
            self.stats.snippet(s.pairing_ms, s.audio_ok)
            if self.on_snippet is not None:
                self.on_snippet(s)
            if self.sinks.wants_frames:                # the frame, and the audio since the last snippet
                self.sinks.frame(self.camera, s.frame, s.audio[-self._hop:] if self.audio is not None else None, s.t)
            try:
                result = self.rec.push(s.frame, s.audio, s.t)
            except BackendError as exc:               # a remote server down or slow: counted, the loop goes on
                self._failed(exc)
                continue
            if self.stats.failed_calls and self._failing:
                log.info("backend calls succeed again (%d failed)", self.stats.failed_calls)
                self._failing = False
            if result is None:
                continue
            result.audio_ok = result.audio_ok and s.audio_ok
            self.stats.decision(result.timings, 1e3 * (time.monotonic() - s.t))
            with self._lock:
                self.latest = result
            self.sinks.decision(self.camera, result)
            if self.on_result is not None:
                self.on_result(result)
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

    def _failed(self, exc):
        self.stats.failed_calls += 1
        if not self._failing:
            log.warning("backend calls fail (%s); counting them until they succeed again", exc)
        self._failing = True
        self.rec.reset()                              # the window lost a snippet: it restarts

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
        threads = [threading.Thread(target=self._guard(f), name=n, daemon=True)
                   for f, n in ((self._clock, "avgn-clock"), (self._infer, "avgn-infer"))]
        for t in threads:
            t.start()
        start = last_stats = time.monotonic()
        last_index = -1
        try:
            while not self._stop.is_set():
                now = time.monotonic()
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
            if threads[1].is_alive():             # inference in flight: the caller may close the Recognizer next
                log.info("waiting for the decision in flight")
                threads[1].join()
        if self.error is not None:
            raise self.error
        if self.tracker is not None:              # the stream stopped: what is open ends
            self._events(self.tracker.close())
        extra = {"source": self.video.stats}
        if self.audio is not None:
            extra["audio"] = self.audio.stats
        return self.stats.summary(extra)
