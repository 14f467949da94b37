"""The one interface every output implements, and the worker that keeps a slow one from stalling inference.

    sink.decision(camera, result)          every decision (a runtime Result)
    sink.event(camera, transition)         every event transition (avgn_edge/events: new | update | end)
    sink.frame(camera, frame, audio, t)    each snippet's RGB frame and the audio that came since the
                                           previous one (only sinks with ``wants_frames``; "audio": the
                                           audio alone, frame None)
    sink.close()                           flush and release

A sink's methods run on its ``Worker``'s thread, never on the inference thread: the worker
puts each call in a bounded queue (``maxsize`` calls: what a stalled sink can hold back,
frames included) and, when the queue is full, drops the call and counts it (``dropped``); a call that raises is counted (``errors``, the first one logged) and the
sink goes on. ``counters()`` adds what a sink counts itself (MQTT: messages lost ...); they
all reach serve's /metrics as ``avgn_output_<name>_total{stream,output}``.
"""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger("avgn_edge.sinks")
_STOP = object()
FRAME_QUEUE = 64      # calls a frame-encoding sink (clips) may have waiting: 16 s of snippets at 4/s


class Sink:
    name = "sink"
    wants_frames = False

    def decision(self, camera: str, result):
        pass

    def event(self, camera: str, transition):
        pass

    def frame(self, camera: str, frame, audio, t: float):
        pass

    def counters(self) -> dict[str, int]:
        return {}

    def close(self):
        pass


class Worker:
    """One sink behind a bounded queue and a thread of its own; the same four methods."""

    def __init__(self, sink: Sink, maxsize: int = 256):
        self.sink, self.name, self.wants_frames = sink, sink.name, sink.wants_frames
        self.dropped = self.errors = 0
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"sink {self.name}", daemon=True)
        self._thread.start()

    def _put(self, item):
        if self._closed:
            return
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def decision(self, camera, result):
        self._put((self.sink.decision, (camera, result)))

    def event(self, camera, transition):
        self._put((self.sink.event, (camera, transition)))

    def submit(self, fn, *args):
        """Any call on the worker's thread, in order with the sink's calls (e.g. forget a camera)."""
        self._put((fn, args))

    def frame(self, camera, frame, audio, t):
        if self.wants_frames:                 # "audio": the sink wants the sound only (no frame kept queued)
            self._put((self.sink.frame, (camera, None if self.wants_frames == "audio" else frame, audio, t)))

    def counters(self) -> dict[str, int]:
        return {"dropped": self.dropped, "errors": self.errors, **self.sink.counters()}

    def _run(self):
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception as exc:          # a sink's failure is its own: count it, keep serving
                self.errors += 1
                if self.errors == 1:
                    log.warning("output %s failed (%s: %s); further failures are only counted", self.name,
                                type(exc).__name__, exc)

    def close(self, timeout: float = 5.0):
        """Drain what is queued (within ``timeout``), then close the sink."""
        if self._closed:
            return
        self._closed = True
        try:
            self._q.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        try:
            self.sink.close()
        except Exception as exc:
            log.warning("output %s did not close cleanly: %s", self.name, exc)


class Fanout:
    """Several workers as one: what a stream (or the live loop) feeds."""

    def __init__(self, workers=()):
        self.workers = list(workers)

    def add(self, worker: Worker):
        self.workers.append(worker)

    @property
    def wants_frames(self) -> bool:
        return any(w.wants_frames for w in self.workers)

    def decision(self, camera, result):
        for w in self.workers:
            w.decision(camera, result)

    def event(self, camera, transition):
        for w in self.workers:
            w.event(camera, transition)

    def frame(self, camera, frame, audio, t):
        for w in self.workers:
            w.frame(camera, frame, audio, t)

    def close(self, timeout: float = 5.0):
        for w in self.workers:
            w.close(timeout)

    def __iter__(self):
        return iter(self.workers)
