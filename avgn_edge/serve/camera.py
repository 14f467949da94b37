"""One camera of the service: its source, snippet clock, window, event tracker, outputs and counters.

The API and the metrics call it a stream (``/api/streams``, ``stream=`` labels); in the code it
is a ``Camera``, not to be taken for a CUDA stream (the TensorRT backend's, emulator/streams.py)
or the synthetic stream (data/stream.py, io/synthstream.py).

The camera's thread owns the source: it opens it (retrying with backoff while it cannot),
ticks the snippet clock on the service's shared grid and posts each snippet to the
scheduler's one-slot mailbox for this camera. Losing the source stalls only this thread:
the status turns ``offline``, the capture reconnects, the status turns ``online`` again and
the window restarts. Everything it keeps is bounded (the last result, a few recent events).
A source given already open (``live``: ``Service.sources``) is used as it is and left open:
its own reconnects are the only ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from ..errors import AvgnError
from .clock import SnippetClock
from .stats import LiveStats
from ..events import EventTracker
from ..io.threadname import name_os_thread
from ..sinks.base import Fanout
from ..sinks.records import message

log = logging.getLogger("avgn_edge.serve")
OFFLINE_AFTER = 2.0          # seconds without a new frame before a stream reads offline
BACKOFF = (0.5, 10.0)        # reopening a source that cannot be opened


class Camera:
    def __init__(self, name: str, cam, service, source: tuple | None = None):
        """``source``: (video, audio) opened (and closed) by the caller, instead of ``cam``'s."""
        self.name, self.cam, self.service, self.given = name, cam, service, source
        self.window = service.rec.new_window(cam.detect.stride)
        self.stats = LiveStats()
        self.tracker = EventTracker(service.rec.labels, cam.detect.settings(self._tuned()), camera=name)
        self.sinks = Fanout()                     # this camera's own outputs (JSON lines, clips); the service's
        self._hop = int(round(service.period * service.sample_rate))   # audio samples per snippet
        self.status = "starting" if cam.enabled else "disabled"
        self.reason = ""                          # why offline (redacted)
        self.drops = {"mailbox": 0, "deadline": 0}
        self.reopens = self.outages = self.input_errors = 0
        self.audio_kind = "none"                  # camera:<codec> | source (file, synth) | mic:<device> | none
        self.audio_note = ""                      # why none (no track, codec not decodable, config)
        self.audio_source = None
        self.last_result = None
        self.recent_events: deque = deque(maxlen=20)
        self._source_reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None   # what stopped the capture thread (a bug)
        self._track = threading.Lock()            # the tracker: the scheduler's results vs detection off

    # -- lifecycle (service thread)
    def start(self):
        if self.cam.enabled and self._thread is None:
            self._stop.clear()
            self.status = "starting"
            self._thread = threading.Thread(target=self._guarded, name=f"stream {self.name}", daemon=True)
            self._thread.start()

    def request_stop(self):
        self._stop.set()

    def stop_capture(self, timeout: float = 4.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self, timeout: float = 4.0):
        """Stop capture, end an active event, flush and close the outputs."""
        self.stop_capture(timeout)
        for tr in self.tracker.close():
            self._event(tr)
        self.sinks.close(timeout)
        self.status = "stopped"

    def _tuned(self) -> dict:
        """The model's own event settings (tuned on a validation stream), under what ``detect:`` sets."""
        return self.service.rec.bundle.event_defaults

    def update(self, cam):
        """Apply changed settings (PATCH): detection thresholds and stride at once, enabled starts/stops."""
        old, self.cam = self.cam, cam
        self.tracker.configure(cam.detect.settings(self._tuned()))
        self.window.stride = cam.detect.stride
        if old.enabled and not cam.enabled:
            self.stop_capture()
            scheduler = getattr(self.service, "scheduler", None)
            if scheduler is not None:
                scheduler.forget(self)
            self._end_open()                      # detection off ends what was open (end, label OFF, clip)
            self.status = "disabled"
        elif cam.enabled and not old.enabled:
            self.start()

    def _end_open(self):
        """No more decisions will come (detection off, the file ended): open events end now and
        their clips are finished with what they have (no frame will come to close them)."""
        scheduler = getattr(self.service, "scheduler", None)
        if scheduler is not None:
            scheduler.forget(self)
        with self._track:
            for tr in self.tracker.close():
                self._event(tr)
        for w in self.sinks:
            if hasattr(w.sink, "finish_open"):
                w.submit(w.sink.finish_open)

    # -- the stream's own thread
    def _set(self, status: str, reason: str = ""):
        if status != self.status:
            if status == "offline":
                self.outages += 1
                log.warning("camera %s: offline%s", self.name, f" ({reason})" if reason else "")
            elif status == "online" and self.status in ("offline", "starting"):
                log.info("camera %s: online (%s)", self.name, self.cam.display_source)
        self.status, self.reason = status, reason

    def _open(self):
        from ..io import Microphone, open_video
        svc, cam = self.service, self.cam
        if self.given is not None:
            video, audio = self.given
            codec, device = getattr(video, "audio_codec", None), getattr(audio, "device_name", None)
            self.audio_source, self.audio_kind = audio, ("none" if audio is None else f"mic:{device}" if device
                                                         else f"camera:{codec}" if codec else "source")
            return video, audio, None
        video = open_video(cam.source, loop=cam.loop, camera=self.name, transport=cam.rtsp_transport,
                           hwaccel=cam.hwaccel)
        kind = "mic" if cam.mic is not None else cam.audio.source
        try:
            if kind == "mic":
                device = cam.mic if cam.mic is not None else cam.audio.device
                device = int(device) if str(device).isdigit() else device
                mic = Microphone(device, rate=svc.sample_rate)
                self.audio_kind, self.audio_source = f"mic:{mic.device_name}", mic
                return video, mic, mic
            audio = video.audio(svc.sample_rate) if kind == "camera" else None
        except Exception:
            video.close()
            raise
        codec = getattr(video, "audio_codec", None)
        if audio is None:
            self.audio_kind = "none"
            self.audio_note = "audio: none in the config" if kind == "none" else getattr(video, "audio_note", "")
        else:
            self.audio_kind, self.audio_note = (f"camera:{codec}" if codec else "source"), ""
        self.audio_source = audio
        return video, audio, None

    def _guarded(self):
        name_os_thread()
        try:
            self._run()
        except Exception as exc:                    # a bug: this stream stops, the others go on
            log.exception("camera %s: capture failed", self.name)
            self.error = exc
            self._set("failed", f"{type(exc).__name__}: {exc}")

    def _run(self):
        delay, svc = BACKOFF[0], self.service
        while not self._stop.is_set():
            try:
                video, audio, mic = self._open()
            except AvgnError as exc:                # unreachable source, missing microphone, ...
                self._set("offline", str(exc))
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, BACKOFF[1])
                self.reopens += 1
                continue
            delay = BACKOFF[0]
            try:
                ended = self._capture(video, audio, svc)
            finally:
                if self.given is None:
                    video.close()
                if mic is not None:
                    mic.close()
            if ended:
                self._end_open()
                window = svc.rec.config.num_snippets * svc.period
                self._set("ended", "the file ended" if self.stats.summary()["decisions"] else
                          f"the file ended before a full window ({window:g} s of video): no decision")
                return

    def _capture(self, video, audio, svc) -> bool:
        """Tick until stopped (False) or the source ended (True)."""
        clock = SnippetClock(video, audio, svc.period, svc.samples, stats=self.stats, epoch=svc.epoch)
        first = True
        while clock.wait(self._stop):
            self._source_reconnects = video.stats.get("reconnects", 0)
            s = clock.take()
            if s is None:
                if video.eos:
                    return True
                if time.monotonic() - clock.last_frame_at > OFFLINE_AFTER and self.status != "offline":
                    self._set("offline", f"no frames for {OFFLINE_AFTER:.0f} s")
                continue
            self._set("online")
            s.restart = s.restart or first           # a (re)opened source starts a new window
            first = False
            svc.scheduler.post(self, s)
            for o in svc.observers:
                o.snippet(self.name, s)
            self._frame(s)
        return False

    # -- the scheduler's side
    def on_result(self, r, latency_s: float):
        with self._track:
            if not self.cam.enabled:              # a step that was under way when detection went off
                return
            self.stats.decision(r.timings, 1e3 * latency_s)
            transitions = self.tracker.update(r)
            self.last_result = r
            for out in (self.sinks, self.service.shared):
                out.decision(self.name, r)
            for o in self.service.observers:
                o.result(self.name, r)
            for tr in transitions:
                self._event(tr)

    # -- into the outputs (each behind its own bounded worker: none of this waits)
    def _event(self, tr):
        record = message(tr, self.service.media_for(self.name))
        self.recent_events.append(record)
        self.service.note_event(self.name, record)
        for out in (self.sinks, self.service.shared):
            out.event(self.name, tr)
        for o in self.service.observers:
            o.event(self.name, tr)

    def _frame(self, s):
        """The snippet's frame and the audio that came since the last one, for the outputs that want them."""
        audio = s.audio[-self._hop:] if self.audio_kind != "none" else None
        for out in (self.sinks, self.service.shared):
            if out.wants_frames:
                out.frame(self.name, s.frame, audio, s.t)

    def audio_info(self) -> dict:
        """Which audio the stream has and its gaps (the API, /metrics, the web view)."""
        out = {"kind": self.audio_kind, "note": self.audio_note or None}
        a = self.audio_source
        if a is not None:
            st = a.stats
            if self.audio_kind.startswith("camera:") and st.get("codec"):   # a reconnect may change it
                self.audio_kind = out["kind"] = f"camera:{st['codec']}"
            out.update({k: st[k] for k in ("codec", "gaps", "gap_seconds", "drift_ms", "timestamp_jumps",
                                           "level_db") if k in st})
        return out

    @property
    def reconnects(self) -> int:
        return self._source_reconnects + self.reopens

    def info(self) -> dict:
        s = self.stats.summary()
        last = self.last_result
        return {"name": self.name, "source": self.cam.display_source, "status": self.status,
                "reason": self.reason or None, "enabled": self.cam.enabled, "audio": self.audio_kind,
                "audio_detail": self.audio_info(), "detect": self.cam.detect.model_dump(),
                "counters": {"snippets": s["snippets"], "decisions": s["decisions"], "dropped": s["dropped"],
                             "dropped_by_reason": dict(self.drops, late=self.stats.late),
                             "stale_ticks": s["stale_ticks"], "audio_gaps": s["audio_gaps"],
                             "reconnects": self.reconnects, "outages": self.outages,
                             "input_errors": self.input_errors, "events": self.tracker.published,
                             "snippets_per_s": round(self.stats.recent_rate(), 3),
                             "latency_p50_ms": s["latency_p50_ms"], "latency_p95_ms": s["latency_p95_ms"]},
                "record_stream": next((w.sink.record.info() for w in self.sinks       # inputs' role record
                                       if getattr(w.sink, "record", None) is not None), None),
                "last_decision": None if last is None else {"t": round(last.t, 3), "top": last.to_dict(3)["top"]},
                "active_events": [e.to_dict() for e in self.tracker.active],
                "recent_events": list(self.recent_events)}
