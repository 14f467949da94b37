"""Outputs of the service: small sinks with two methods, each on its own thread.

    write(camera, result, records)   a decision and the event records it caused
    close()                          flush and release

``Worker`` runs one output behind a bounded queue: a slow or broken output drops its own
work (``dropped``/``errors`` counters, in /metrics) and never stalls inference. Issue 12's
MQTT, event clips and ROS 2 outputs plug in the same way (one config section each).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path

log = logging.getLogger(__name__)
_STOP = object()


class JsonlOutput:
    """JSON lines per camera: ``decision`` records (optional) and event records, flushed per decision."""

    def __init__(self, path: str | Path, decisions: bool = True, top: int = 3):
        self.path, self.decisions, self.top = Path(path), decisions, top
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a")

    def write(self, camera: str, result, records: list[dict]):
        if self.decisions and result is not None:
            self.f.write(json.dumps({"type": "decision", "camera": camera, **result.to_dict(top=self.top)}) + "\n")
        for rec in records:
            self.f.write(json.dumps({"camera": camera, **rec}) + "\n")
        self.f.flush()

    def close(self):
        if not self.f.closed:
            self.f.close()


class Worker:
    def __init__(self, output, name: str, maxsize: int = 256):
        self.output, self.name = output, name
        self.dropped = self.errors = 0
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name=f"output {name}", daemon=True)
        self._thread.start()

    def write(self, camera: str, result, records: list[dict]):
        try:
            self._q.put_nowait((camera, result, records))
        except queue.Full:
            self.dropped += 1

    def _run(self):
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            try:
                self.output.write(*item)
            except Exception as exc:          # an output's failure is its own: count it, keep serving
                self.errors += 1
                if self.errors == 1:
                    log.warning("output %s failed (%s); further failures are only counted", self.name, exc)

    def close(self, timeout: float = 3.0):
        """Drain what is queued (within ``timeout``), then close the output."""
        try:
            self._q.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        try:
            self.output.close()
        except Exception as exc:
            log.warning("output %s did not close cleanly: %s", self.name, exc)
