"""MQTT in Frigate's topic layout (paho-mqtt), for Home Assistant, Node-RED and NVRs.

    <prefix>/available                 online | offline (retained; offline is the last will: a crash reads offline)
    <prefix>/events                    {"type": new|update|end, "before", "after"} (records.py)
    <prefix>/<camera>/<label>          ON | OFF while an event of that label is open (retained); the label's
                                       topic-safe form: characters other than A-Z a-z 0-9 _ . - become _
    <prefix>/<camera>/events           {"event_type": <label>, "id", "score", "start_time"} when an event
                                       starts (Home Assistant's event entity)
    <prefix>/<camera>/audio/dBFS       audio level of the last second (and .../audio/rms, int16 scale)
    <prefix>/<camera>/detect/set       ON | OFF switches detection at run time; echoed on .../detect/state
    <prefix>/stats                     every ``stats_interval`` s: the service's counters (JSON)
    homeassistant/.../config           Home Assistant discovery (optional, retained; mqtt_discovery.py)

The client connects in the background and reconnects with backoff (1 s doubling to 30 s).
While the broker is away, messages wait in a bounded outbox (``outbox`` messages; the oldest
are dropped first and counted as ``lost``) and go out when it is back; nothing waits on the
broker, so inference never does. ``counters()``: published, lost, connects.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..config import BACKGROUND
from ..errors import ConfigError
from .base import Sink
from .records import Media, message, safe

log = logging.getLogger("avgn_edge.sinks.mqtt")
FEATURES = ("detect",)          # <prefix>/<camera>/<feature>/set


@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "avgn"
    client_id: Optional[str] = None
    user: Optional[str] = None
    password: Optional[str] = None
    tls_ca_certs: Optional[str] = None       # a CA file: TLS on
    tls_insecure: bool = False               # TLS without checking the server's name (self-signed test brokers)
    stats_interval: float = 60.0
    audio_interval: float = 1.0              # seconds between audio level messages per camera
    discovery: bool = False                  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    outbox: int = 1000                       # messages kept while the broker is away
    keepalive: int = 30

    @classmethod
    def parse_address(cls, text: str, **kw) -> "MqttSettings":
        """``HOST[:PORT]`` (``live --mqtt``)."""
        host, _, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
        if not host:
            raise ConfigError(f"--mqtt {text!r}: expected HOST or HOST:PORT")
        try:
            return cls(host=host, port=int(port) if port else 1883, **kw)
        except ValueError:
            raise ConfigError(f"--mqtt {text!r}: the port must be a number") from None


def audio_level(wave: np.ndarray) -> tuple[float, float]:
    """(rms on Frigate's int16 scale, dBFS) of float audio in [-1, 1]."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    return 32768.0 * rms, (20 * math.log10(rms) if rms > 1e-10 else -200.0)


class MqttSink(Sink):
    """``labels``: the model's labels (ON/OFF topics, discovery); ``on_set(camera, feature, on)``
    applies a switch and returns its new state (None: no such camera); ``stats()`` returns
    the JSON for ``<prefix>/stats``; ``media`` names event clips in the records."""

    name = "mqtt"
    wants_frames = "audio"

    def __init__(self, settings: MqttSettings, labels, cameras=(), *, on_set: Callable | None = None,
                 stats: Callable[[], dict] | None = None, media: Callable[[str], Media | None] | None = None,
                 state: Callable[[str, str], bool] | None = None):
        import paho.mqtt.client as mqtt
        self.s, self.p = settings, settings.topic_prefix.rstrip("/")
        self.labels = [l for l in labels if l != BACKGROUND]
        self.topics = {l: safe(l) for l in self.labels}       # '#', '+' and '/' cannot be in a label's topic
        clash = [l for l in self.labels if list(self.topics.values()).count(self.topics[l]) > 1]
        if clash:
            raise ConfigError(f"mqtt: labels {', '.join(map(repr, clash))} share the topic "
                              f"{self.p}/<camera>/{self.topics[clash[0]]}; rename them in the bundle")
        self.on_set, self.stats_fn, self.media, self.state_fn = on_set, stats, media, state
        self.cameras: list[str] = []
        self._open: dict[tuple[str, str], int] = {}   # (camera, label topic) -> open events: ON on a reconnect
        self.published = self.lost = self.connects = 0
        self._outbox: deque = deque()
        self._lock = threading.Lock()
        self._connected = False
        self._last_audio: dict[str, float] = {}
        self._audio: dict[str, list] = {}
        self._stop = threading.Event()
        self._no_conn = mqtt.MQTT_ERR_NO_CONN
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id or "",
                                      protocol=mqtt.MQTTv311)
        c.will_set(f"{self.p}/available", "offline", qos=1, retain=True)
        if settings.user:
            c.username_pw_set(settings.user, settings.password)
        if settings.tls_ca_certs:
            c.tls_set(ca_certs=settings.tls_ca_certs)
            c.tls_insecure_set(settings.tls_insecure)
        c.reconnect_delay_set(1, 30)
        c.max_queued_messages_set(settings.outbox + 100)    # paho's own queue (unacknowledged qos 1) bounded too
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        c.on_connect_fail = self._on_connect_fail
        self._unreachable = False
        for cam in cameras:
            self.add_camera(cam)
        try:
            c.connect_async(settings.host, settings.port, keepalive=settings.keepalive)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"mqtt: cannot use broker {settings.host}:{settings.port} ({exc})") from None
        c.loop_start()
        self._stats_thread = None
        if stats is not None and settings.stats_interval > 0:
            self._stats_thread = threading.Thread(target=self._stats_loop, name="mqtt stats", daemon=True)
            self._stats_thread.start()

    # -- publishing through the outbox
    def _publish(self, topic: str, payload, qos: int = 0, retain: bool = False):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        with self._lock:
            if self._connected:
                info = self.client.publish(topic, payload, qos=qos, retain=retain)
                if info.rc == 0:
                    self.published += 1
                    return
                if info.rc != self._no_conn:            # connected but paho's queue is full: lost
                    self.lost += 1
                    return
            if len(self._outbox) >= self.s.outbox:
                self._outbox.popleft()
                self.lost += 1
                if self.lost == 1:
                    log.warning("mqtt: the broker is away and the outbox (%d) is full; counting lost messages",
                                self.s.outbox)
            self._outbox.append((topic, payload, qos, retain))

    def _on_connect(self, client, _userdata, _flags, reason, _props):
        if reason.is_failure:
            log.warning("mqtt: %s:%d refused the connection (%s)", self.s.host, self.s.port, reason)
            return
        self.connects += 1
        self._unreachable = False
        log.info("mqtt: connected to %s:%d%s", self.s.host, self.s.port,
                 f" (again; {self.lost} message(s) lost so far)" if self.connects > 1 else "")
        client.subscribe(f"{self.p}/+/+/set", qos=1)
        with self._lock:
            self._connected = True
            pending, self._outbox = list(self._outbox), deque()
        self._publish(f"{self.p}/available", "online", qos=1, retain=True)
        for cam in list(self.cameras):
            self._announce(cam)
        for item in pending:
            self._publish(*item)

    def _on_connect_fail(self, _client, _userdata):
        if not self._unreachable:                          # said once; paho retries with the backoff
            log.warning("mqtt: cannot reach the broker %s:%d; retrying (1 s doubling to 30 s)", self.s.host,
                        self.s.port)
        self._unreachable = True

    def _on_disconnect(self, _client, _userdata, _flags, reason, _props):
        with self._lock:
            was, self._connected = self._connected, False
        if was and not self._stop.is_set():
            log.warning("mqtt: lost the broker %s:%d (%s); reconnecting", self.s.host, self.s.port, reason)

    def _on_message(self, _client, _userdata, msg):
        parts = msg.topic[len(self.p) + 1:].split("/")
        if len(parts) != 3 or parts[2] != "set" or parts[1] not in FEATURES:
            return
        cam, feature = parts[0], parts[1]
        value = msg.payload.decode(errors="replace").strip().upper()
        if value not in ("ON", "OFF") or self.on_set is None:
            log.warning("mqtt: %s: expected ON or OFF, got %r", msg.topic, value[:20])
            return
        try:
            state = self.on_set(cam, feature, value == "ON")
        except Exception as exc:             # the host refused (a bad state): said, not fatal
            log.warning("mqtt: %s %s failed: %s", msg.topic, value, exc)
            return
        if state is not None:
            self._publish(f"{self.p}/{cam}/{feature}/state", "ON" if state else "OFF", qos=1, retain=True)

    # -- per camera
    def add_camera(self, camera: str):
        if camera not in self.cameras:
            self.cameras.append(camera)
            if self._connected:
                self._announce(camera)

    def _announce(self, cam: str):
        """What a (re)connected broker must know about a camera: its switches, labels OFF, discovery."""
        for f in FEATURES:
            on = True if self.state_fn is None else self.state_fn(cam, f)
            self._publish(f"{self.p}/{cam}/{f}/state", "ON" if on else "OFF", qos=1, retain=True)
        for label in self.labels:                      # as they are: an event open across a reconnect stays ON
            on = self._open.get((cam, self.topics[label]), 0) > 0
            self._publish(f"{self.p}/{cam}/{self.topics[label]}", "ON" if on else "OFF", qos=1, retain=True)
        if self.s.discovery:
            from .mqtt_discovery import discovery_messages
            for topic, payload in discovery_messages(self.s, cam, self.labels):
                self._publish(topic, payload, qos=1, retain=True)

    def remove_camera(self, camera: str):
        """A deleted stream: its retained states and discovery go (empty retained payloads; Home
        Assistant removes the entities), and a reconnect does not announce it again."""
        if camera in self.cameras:
            self.cameras.remove(camera)
        for key in [k for k in self._open if k[0] == camera]:
            del self._open[key]
        self._audio.pop(camera, None)              # its sound since the last level (nothing kept of a deleted camera)
        self._last_audio.pop(camera, None)
        topics = [f"{self.p}/{camera}/{f}/state" for f in FEATURES]
        topics += [f"{self.p}/{camera}/{self.topics[label]}" for label in self.labels]
        if self.s.discovery:
            from .mqtt_discovery import discovery_messages
            topics += [t for t, _ in discovery_messages(self.s, camera, self.labels)]
        for topic in topics:
            self._publish(topic, "", qos=1, retain=True)

    def event(self, camera, tr):
        self.add_camera(camera)
        media = self.media(camera) if self.media is not None else None
        msg = message(tr, media)
        self._publish(f"{self.p}/events", msg, qos=1)
        if tr.type in ("new", "end"):
            topic = self.topics.get(tr.label) or safe(tr.label)
            n = max(0, self._open.get((camera, topic), 0) + (1 if tr.type == "new" else -1))
            self._open[(camera, topic)] = n
            self._publish(f"{self.p}/{camera}/{topic}", "ON" if n else "OFF", qos=1, retain=True)
        if tr.type == "new":
            a = msg["after"]
            self._publish(f"{self.p}/{camera}/events", {"event_type": a["label"], "id": a["id"], "score": a["score"],
                                                         "start_time": a["start_time"]}, qos=1)

    def frame(self, camera, _frame, audio, t):
        if audio is None:
            return
        self._audio.setdefault(camera, []).append(audio)
        last = self._last_audio.get(camera)
        if last is None:
            self._last_audio[camera] = t
        elif t - last >= self.s.audio_interval:
            rms, dbfs = audio_level(np.concatenate(self._audio.pop(camera)))
            self._last_audio[camera] = t
            self._publish(f"{self.p}/{camera}/audio/dBFS", f"{dbfs:.1f}")
            self._publish(f"{self.p}/{camera}/audio/rms", f"{rms:.1f}")

    def _stats_loop(self):
        while not self._stop.wait(self.s.stats_interval):
            try:
                self._publish(f"{self.p}/stats", {"timestamp": round(time.time(), 3), **self.stats_fn()})
            except Exception as exc:          # a stats bug must not kill the sink
                log.warning("mqtt: stats failed: %s", exc)

    def counters(self) -> dict[str, int]:
        return {"published": self.published, "lost": self.lost, "connects": self.connects}

    def close(self, timeout: float = 3.0):
        """``offline`` (retained) on the way out, sent before the connection closes."""
        self._stop.set()
        with self._lock:
            connected = self._connected
        if connected:
            info = self.client.publish(f"{self.p}/available", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
