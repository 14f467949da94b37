"""The live loop: a snippet clock, an inference thread and the sinks, over any sources.

    clock thread      every snippet_period: the newest frame, and the audio window that ends
                      at that frame's timestamp -> a one-slot queue (when inference is behind,
                      the waiting snippet is dropped and counted: never an unbounded backlog)
    inference thread  Recognizer.push -> Result -> event tracker -> result sinks (every decision
                      and every event transition), stats, latest result
    caller's thread   renders the newest frame with the latest result for display / MP4

Capture never blocks on inference: sources keep only their latest frame, the microphone
writes into its own ring from its callback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..runtime.result import Result
from .overlay import draw
from .stats import LiveStats

log = logging.getLogger(__name__)


@dataclass
class Snippet:
    frame: np.ndarray
    audio: np.ndarray
    t: float                 # the frame's timestamp (monotonic); the audio window ends here
    audio_ok: bool
    pairing_ms: float        # how far the audio we had fell short of the frame's time


class LiveLoop:
    def __init__(self, recognizer, video, audio=None, *, frame_sinks=(), sinks=(), tracker=None,
                 duration: float | None = None, stats_every: float = 5.0, audio_wait: float = 0.15,
                 render_fps: float = 15.0, on_result=None, on_snippet=None, on_event=None):
        self.rec, self.video, self.audio = recognizer, video, audio
        self.frame_sinks, self.sinks, self.tracker = list(frame_sinks), list(sinks), tracker
        self.on_event = on_event
        self.duration, self.stats_every, self.audio_wait = duration, stats_every, audio_wait
        self.render_period = 1.0 / render_fps
        self.on_result, self.on_snippet = on_result, on_snippet
        self.cfg = recognizer.config
        self.stats = LiveStats()
        self.results: list[Result] = []
        self.latest: Result | None = None
        self._queue: queue.Queue[Snippet] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    # -- producer
    def _clock(self):
        period, n = self.cfg.snippet_period, self.cfg.audio_samples
        last_t = None
        reconnects = self.video.stats.get("reconnects", 0)
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += period
            if time.monotonic() > next_tick + period:     # fell behind (a stalled source): resync
                next_tick = time.monotonic()
            self._stop.wait(max(0.0, next_tick - time.monotonic()))
            if self._stop.is_set():
                break
            frame = self.video.latest(timeout=period)
            if frame is None:
                if self.video.eos:
                    log.info("source ended")
                    self._stop.set()
                else:
                    self.stats.stale += 1
                continue
            if last_t is not None and frame.t <= last_t:
                self.stats.stale += 1
                continue
            now_reconnects = self.video.stats.get("reconnects", 0)
            if last_t is not None and (frame.t - last_t > 3 * period or now_reconnects != reconnects):
                log.warning("%.1f s gap in the video (reconnects: %d): restarting the window",
                            frame.t - last_t, now_reconnects)
                self._put(None)                       # tells the consumer to reset
            reconnects = now_reconnects
            last_t = frame.t
            if self.audio is not None:
                wave, ok = self.audio.window(frame.t, n, timeout=self.audio_wait)
                short = max(0.0, frame.t - self.audio.available_until())
            else:
                wave, ok, short = np.zeros(n, np.float32), False, 0.0
            self._put(Snippet(frame.image, wave, frame.t, ok, 1e3 * short))

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
            result = self.rec.push(s.frame, s.audio, s.t)
            if result is None:
                continue
            result.audio_ok = result.audio_ok and s.audio_ok
            self.stats.decision(result.timings, 1e3 * (time.monotonic() - s.t))
            with self._lock:
                self.latest = result
                self.results.append(result)
            for sink in self.sinks:
                sink.write_result(result)
            if self.on_result is not None:
                self.on_result(result)
            if self.tracker is not None:
                self._events(self.tracker.update(result))

    def _events(self, transitions):
        for tr in transitions:
            for sink in self.sinks:
                sink.write_event(tr)
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
                t.join(timeout=5)
        if self.error is not None:
            raise self.error
        if self.tracker is not None:              # the stream stopped: what is open ends
            self._events(self.tracker.close())
        extra = {"source": self.video.stats}
        if self.audio is not None:
            extra["audio"] = self.audio.stats
        return self.stats.summary(extra)
