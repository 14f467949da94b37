"""The scheduler: one thread that batches whatever snippets and decisions are due, across streams.

Each stream posts at most one snippet at a time (a one-slot mailbox per stream: a snippet
not taken before the stream's next one is dropped and counted), so nothing can queue up.
Streams tick on one shared grid, so a tick's snippets arrive together: the scheduler takes
the first, waits up to ``max_wait_ms`` for the rest of the online streams, then

    1. drops snippets already older than ``deadline_ms`` (counted per stream: their decision
       could not be on time anyway),
    2. runs the glance stages once for all of them (``max_batch`` per call),
    3. runs one batched decision for every stream whose window is due,
    4. hands each result to its stream (event tracker, outputs, counters).

A backend call that fails for an outside reason (``BackendError``: a remote server down or
slow) is counted (``failed_calls``, per phase) and logged when failures start and stop; the
snippets it carried are lost and their windows restart, the service keeps going.

Latency is measured from the frame's capture time to the result.
"""

from __future__ import annotations

import logging
import threading
import time

from ..errors import BackendError, InputError
from .stats import Histogram
from ..runtime.pipeline import Timer
from ..io.threadname import name_os_thread

log = logging.getLogger("avgn_edge.serve")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Scheduler:
    def __init__(self, rec, cfg, streams):
        self.rec, self.cfg = rec, cfg
        self.streams = streams                   # callable -> the current list of streams
        self._pending: dict = {}                 # stream -> Snippet (one each)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.snippet_batches = Histogram(BATCH_BUCKETS)
        self.decision_batches = Histogram(BATCH_BUCKETS)
        self.seconds = {"encode": Histogram(SECONDS_BUCKETS), "decide": Histogram(SECONDS_BUCKETS)}
        self.steps = 0
        self.failed_calls = {"encode": 0, "decide": 0}
        self._failing: str | None = None          # the last failure's message while calls keep failing

    # -- streams' threads
    def post(self, stream, snippet):
        with self._cond:
            old = self._pending.get(stream)
            if old is not None:                  # not taken in time: the older one is dropped
                stream.stats.dropped += 1
                stream.drops["mailbox"] += 1
                snippet.restart = snippet.restart or old.restart
            self._pending[stream] = snippet
            self._cond.notify()

    def forget(self, stream):
        with self._cond:
            self._pending.pop(stream, None)

    # -- the scheduler's thread
    def start(self):
        self._thread = threading.Thread(target=self._guarded, name="avgn-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self):
        name_os_thread()
        try:
            self._run()
        except BaseException as exc:             # a bug: /health/ready turns 503, the service stops
            log.exception("scheduler failed")
            self.error = exc

    def _run(self):
        wait = self.cfg.max_wait_ms / 1e3
        while not self._stop.is_set():
            with self._cond:
                if not self._cond.wait_for(lambda: self._stop.is_set() or self._pending, timeout=0.5):
                    continue
                online = sum(1 for st in self.streams() if st.status == "online")
                self._cond.wait_for(lambda: self._stop.is_set() or len(self._pending) >= online, timeout=wait)
                batch, self._pending = list(self._pending.items()), {}
            if not self._stop.is_set():
                self.step(batch)

    def step(self, batch: list):
        now = time.monotonic()
        deadline = self.cfg.deadline_ms / 1e3
        items, trigger = [], {}
        for st, s in batch:
            if now - s.t > deadline:
                st.stats.dropped += 1
                st.drops["deadline"] += 1
                continue
            if s.restart:
                st.window.reset()
            try:
                c = st.window.check(s.frame, s.audio, s.t)
            except InputError as exc:
                st.input_errors += 1
                if st.input_errors == 1:
                    log.warning("camera %s: snippet refused (%s); further refusals are only counted", st.name, exc)
                continue
            st.stats.snippet(s.pairing_ms, s.audio_ok)
            items.append(c)
            trigger[st] = s
        if not items:
            return
        timer, size = Timer(), self.cfg.max_batch
        t0 = time.perf_counter()
        for part in chunks(items, size):
            if not self._guard("encode", self.rec.encode_many, part, timer)[0]:
                for c in part:                       # a window must not skip a snippet: it restarts
                    c.window.reset()
            self.snippet_batches.observe(len(part))
        t1 = time.perf_counter()
        due = [st for st in trigger if st.window.due]
        results = []
        for part in chunks(due, size):
            ok, out = self._guard("decide", self.rec.decide_many, [st.window for st in part], timer)
            results += zip(part, out) if ok else []
            self.decision_batches.observe(len(part))
        t2 = time.perf_counter()
        self.seconds["encode"].observe(t1 - t0)
        if due:
            self.seconds["decide"].observe(t2 - t1)
        done = time.monotonic()
        for st, r in results:
            s = trigger[st]
            r.audio_ok = r.audio_ok and s.audio_ok
            st.on_result(r, done - s.t)
        self.steps += 1

    def _guard(self, phase: str, fn, *args):
        """(True, ``fn(*args)``), or (False, None) counted when the backend call fails for an outside reason."""
        try:
            out = fn(*args)
        except BackendError as exc:
            self.failed_calls[phase] += 1
            if self._failing is None:
                log.warning("backend calls fail (%s); counting them (avgn_backend_failed_calls_total) until they "
                            "succeed again", exc)
            self._failing = str(exc)
            return False, None
        if self._failing is not None:
            log.info("backend calls succeed again (%d failed so far)", sum(self.failed_calls.values()))
            self._failing = None
        return True, out
