"""The service: one model, one backend, many streams, one scheduler, the HTTP API.

    svc = Service(load_config("serve.yaml"))
    svc.start()                 # model, streams, scheduler, API (svc.api.port)
    ...
    svc.stop()                  # streams closed, events ended, outputs flushed, API down

Data flows one way: streams' threads (capture, clock) -> scheduler (batched inference) ->
each stream's event tracker and outputs; the API reads state and adds/removes/patches streams.
``live`` is this service with one camera (live/loop.py): its recognizer and its opened source
are given (``rec``, ``sources``), ``observers`` see each snippet, result and event as it happens,
and its ``--web`` serves the web view alone (``start(web_only=True)``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from ..deps import gpu_emulated
from ..version import __version__
from ..errors import BundleError, ConfigError, InputError
from .config import CameraConfig, ServeConfig, camera_from_request, patched_camera
from ..sinks.base import Fanout
from ..sinks.records import Media
from .scheduler import Scheduler
from .camera import Camera

log = logging.getLogger("avgn_edge.serve")


class NoStream(InputError, LookupError):
    """A stream name that is not (or no longer) there: the API answers 404."""


class Service:
    def __init__(self, cfg: ServeConfig, rec=None):
        """``rec``: a Recognizer the caller owns (and closes); else the config's model is loaded at start."""
        self.cfg, self.rec, self._owns_rec = cfg, rec, rec is None
        self.scheduler = self.api = self.registry = self.web = None
        self.sources: dict = {}                  # camera -> (video, audio) the caller opened and closes
        self.observers: list = []                # .snippet/.result/.event(camera, x), called in the pipeline's threads
        self._media_of: dict[str, Media | None] = {}   # per camera ever added (its last config)
        self.shared = Fanout()                   # outputs of all streams: web view, MQTT, ROS 2
        self._streams: dict[str, Camera] = {}
        self._lock = threading.RLock()
        self._changes = threading.Lock()         # one POST/PATCH/DELETE at a time (of any name)
        self._events: deque = deque(maxlen=200)
        self.started = self.stopping = False

    # -- model facts the streams need
    @property
    def period(self) -> float:
        return self.rec.config.snippet_period

    @property
    def samples(self) -> int:
        return self.rec.config.audio_samples

    @property
    def sample_rate(self) -> int:
        return self.rec.config.sample_rate

    def model_info(self) -> dict:
        m = self.cfg.model
        return {"bundle": str(self.rec.bundle.root), "model": self.rec.config.name, "precision": m.precision,
                "backend": self.rec.backend.name, "version": __version__,
                "labels": str(len(self.rec.labels)), "max_batch": str(self.cfg.scheduler.max_batch),
                "emulated_gpu": str(self.rec.backend.name == "trt" and gpu_emulated()).lower()}

    # -- lifecycle
    def load_model(self):
        from ..bundle import load_bundle
        from ..runtime.recognizer import Recognizer, open_with_pipeline
        m = self.cfg.model
        try:
            bundle = load_bundle(m.bundle)
        except BundleError as exc:
            raise ConfigError(f"model.bundle: {exc}", hint=exc.hint) from None
        # batched on every backend; auto falls back to ONNX Runtime if the TensorRT pipeline cannot start
        self.rec = Recognizer(bundle, *open_with_pipeline(bundle, m.backend, m.precision, **m.backend_options()))
        self._check_labels("detect", self.cfg.detect)
        for name, cam in self.cfg.cameras.items():
            self._check_labels(f"cameras.{name}.detect", cam.detect)

    def _check_labels(self, where: str, detect):
        from .check import check_labels
        check_labels(where, detect, self.rec.labels, self.rec.bundle.event_defaults)

    def start(self, api: bool = True, web_only: bool = False):
        if api and self.cfg.api.port is None:
            raise ConfigError("api.port: required (or pass --port)")
        if api:                                   # the port first: a taken one fails before any output opens
            from ..sinks.httphost import ApiServer
            a = self.cfg.api
            if web_only:                          # live --web: the web view alone, under the API's guard
                from ..sinks.web import web_app
                self.api = ApiServer(lambda: web_app(self.web.sink, a.token, a.host), a.host, a.port,
                                     setting="--web PORT", alternative="")
            else:
                from .api import build_app
                self.api = ApiServer(lambda: build_app(self, a.token, a.host, a.allowed_hosts), a.host, a.port)
            self.api.claim()
        if self.rec is None:
            self.load_model()
        self.epoch = time.monotonic()
        self.scheduler = Scheduler(self.rec, self.cfg.scheduler, self.stream_list)
        if not web_only:                          # /metrics (prometheus-client: serve's extra, not live's)
            from .metrics import registry_for
            self.registry = registry_for(self)
        self.scheduler.start()
        self._open_shared(api)
        for name, cam in self.cfg.cameras.items():
            self._add(name, cam)
        if api:
            a = self.cfg.api
            self.api.start()
            log.info("API on http://%s:%d (token %s)", a.host, self.api.port, "required" if a.token else "off")
        self.started = True
        log.info("serving %d stream(s) with %s on %s (%s), max batch %d", len(self._streams), self.rec.config.name,
                 self.rec.backend.name, self.cfg.model.precision, self.cfg.scheduler.max_batch)

    def stop(self, timeout: float = 4.0):
        """Stop capture, finish the scheduler's step, end events, flush outputs, close the API."""
        self.stopping = True
        with self._lock:
            streams = list(self._streams.values())
        for st in streams:                       # stop all capture threads at once, then wait
            st.request_stop()
        if self.scheduler is not None:
            self.scheduler.stop(timeout)
            if self.scheduler.alive:              # a step in flight: the recognizer is closed only after it
                log.info("waiting for the decision in flight")
                self.scheduler.stop(timeout=None)
        for st in streams:
            st.close(timeout)
        self.shared.close(timeout)               # after the streams' last events (MQTT: offline last)
        if self.api is not None:
            self.api.stop()
        if self.rec is not None and self._owns_rec:
            self.rec.close()
        log.info("stopped")

    def readiness(self) -> tuple[bool, str]:
        if not self.started:
            return False, "starting"
        if self.stopping:
            return False, "stopping"
        if self.scheduler is None or not self.scheduler.alive:
            return False, f"the scheduler is not running ({self.scheduler.error if self.scheduler else ''})"
        return True, ""

    # -- streams
    def stream_list(self) -> list[Camera]:
        with self._lock:
            return list(self._streams.values())

    def get_stream(self, name: str) -> Camera | None:
        with self._lock:
            return self._streams.get(name)

    # -- outputs
    def _host(self):
        from ..sinks.outputs import Host
        return Host(self.rec.labels, list(self.cfg.cameras), self.period, self.sample_rate, self.media_for,
                    on_set=self._switch, state=self._switch_state, stats=self.stats)

    def _open_shared(self, web: bool):
        from ..sinks.outputs import shared_outputs
        c = self.cfg
        sections = {"web": {} if web else None, "mqtt": None if c.mqtt is None else c.mqtt.model_dump(),
                    "ros2": None if c.ros2 is None else c.ros2.model_dump()}
        workers = shared_outputs(sections, self._host())
        self.web = workers.get("web")
        if self.web is not None:                    # the meter says which audio each camera has, and its gaps
            self.web.sink.audio_of = lambda name: (lambda st: st.audio_info() if st else None)(self.get_stream(name))
        for w in workers.values():
            self.shared.add(w)

    def media_for(self, camera: str) -> Media | None:
        """Where the camera's event clips and snapshots go (None without ``record``)."""
        return self._media_of.get(camera)

    def _sinks(self, name: str, cam: CameraConfig) -> list:
        from ..sinks.outputs import camera_outputs
        path = cam.jsonl.file_for(name)
        jsonl = None if path is None else {"path": path, "decisions": cam.jsonl.decisions,
                                           "append": cam.jsonl.append}
        record = None if self._media_of[name] is None else cam.record.model_dump()
        if record is not None and cam.record_source:          # clips copied from the camera's record stream
            record.update(record_source=cam.record_source, rtsp_transport=cam.rtsp_transport)
        sections = {"jsonl": jsonl, "record": record}
        return camera_outputs(sections, self._host(), name)

    @staticmethod
    def _media(name: str, cam: CameraConfig) -> Media | None:
        r = cam.record
        return Media(r.path.replace("{camera}", name), snapshots=r.snapshots) if r is not None and r.enabled else None

    def _switch(self, camera: str, feature: str, on: bool) -> bool | None:
        """MQTT ``<prefix>/<camera>/detect/set``: detection (the stream) on or off; its new state."""
        if self.get_stream(camera) is None:
            return None
        return self.patch_stream(camera, {"enabled": on}).cam.enabled

    def _switch_state(self, camera: str, feature: str) -> bool:
        st = self.get_stream(camera)
        cam = st.cam if st is not None else self.cfg.cameras.get(camera)      # (not added yet: its config)
        return cam is not None and cam.enabled

    def stats(self) -> dict:
        """``<prefix>/stats``: the service and each stream's counters."""
        return {"service": {"uptime_s": round(time.monotonic() - self.epoch, 1), "version": __version__,
                            "backend": self.rec.backend.name, "streams": len(self.stream_list())},
                "cameras": {st.name: {"status": st.status, **st.info()["counters"]} for st in self.stream_list()}}

    def _add(self, name: str, cam: CameraConfig) -> Camera:
        with self._lock:
            if name in self._streams:
                raise InputError(f"a stream named {name!r} exists already")
            if len(self._streams) >= self.cfg.api.max_streams:
                raise InputError(f"{name}: the service has {len(self._streams)} streams, its limit "
                                 f"(api.max_streams)", hint="DELETE a stream, or raise api.max_streams")
            self._check_labels(f"cameras.{name}.detect", cam.detect)
            st = Camera(name, cam, self, self.sources.get(name))
            self._media_of[name] = self._media(name, cam)
            st.sinks = Fanout(self._sinks(name, cam))
            self._streams[name] = st
        st.start()
        for w in self.shared:                       # MQTT announces it (states, discovery) at once
            if hasattr(w.sink, "add_camera"):
                w.submit(w.sink.add_camera, name)
        log.info("camera %s: added (%s)", name, cam.display_source)
        return st

    def add_stream_from_request(self, body: dict) -> Camera:
        name, cam = camera_from_request(self.cfg, body)
        with self._changes:
            return self._add(name, cam)

    def patch_stream(self, name: str, body: dict) -> Camera:
        with self._changes:
            return self._patch(name, body)

    def _patch(self, name: str, body: dict) -> Camera:
        with self._lock:
            st = self._streams.get(name)
            if st is None:
                raise NoStream(f"no stream named {name!r}")
            new = patched_camera(st.cam, body)
            self._check_labels(f"{name}.detect", new.detect)
        st.update(new)
        return st

    def remove_stream(self, name: str):
        with self._changes:
            with self._lock:
                st = self._streams.pop(name, None)
            if st is None:
                raise NoStream(f"no stream named {name!r}")
            try:
                self.scheduler.forget(st)
                st.close()
            finally:                                # the cleanup runs whatever the close did
                if self.web is not None:            # after the stream's last events, in the web view's order
                    self.web.submit(self.web.sink.forget, name)
                for w in self.shared:               # MQTT: its retained states and discovery go
                    if hasattr(w.sink, "remove_camera"):
                        w.submit(w.sink.remove_camera, name)
                log.info("camera %s: removed", name)

    def note_event(self, camera: str, record: dict):
        """A stream's event transition (records.message), for /api/events (the last 200 of all streams)."""
        self._events.append({"camera": camera, **record})

    def recent_events(self) -> list[dict]:
        return list(self._events)
