"""Rigs for the output tests (real parts, 127.0.0.1 only): Debian's mosquitto on a free port,
a paho subscriber that records what it hears, decisions with known scores."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from live_rigs import _unavailable
from serve_rigs import free_port, stop_process, wait_for

LABELS = ("bell", "buzz", "background")


def decision(t, **scores):
    """A Result at time t with the given label scores (the rest goes to background)."""
    from avgn_edge.runtime.result import Result
    s = np.array([scores.get(l, 0.0) for l in LABELS], np.float32)
    s[-1] = max(0.0, 1.0 - s.sum())
    return Result(s, LABELS, saliency=np.linspace(0, 1, 4, dtype=np.float32),
                  timestamps=t - 0.25 * np.arange(4)[::-1], indices=np.array([3, 1]),
                  boxes=np.array([[1, 2, 33, 34], [5, 6, 37, 38]], np.float32))


class Mosquitto:
    """A broker process; ``stop()`` and ``start()`` again on the same port (a broker restart)."""

    def __init__(self, workdir: Path, port: int | None = None, passwords: dict[str, str] | None = None,
                 tls: bool = False):
        self.dir, self.port, self.proc = Path(workdir), port or free_port(), None
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "user root"]   # root: read files in pytest's private tmp
        if tls:                                  # a self-signed certificate for 127.0.0.1, its own CA
            self.ca, key = self.dir / "cert.pem", self.dir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                            str(self.ca), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
            lines += [f"cafile {self.ca}", f"certfile {self.ca}", f"keyfile {key}"]
        if passwords:
            pw = self.dir / "passwd"
            for n, (user, password) in enumerate(passwords.items()):
                subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if n == 0 else []), str(pw), user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        self.log = open(self.dir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited: " + (self.dir / "mosquitto.log").read_text()[-500:])
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(up, 10, 0.05, "mosquitto to listen")
        return self

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None
        self.log.close()


@pytest.fixture
def broker(tmp_path):
    if shutil.which("mosquitto") is None:
        _unavailable("the MQTT tests need Debian's mosquitto: apt-get install mosquitto")
    pytest.importorskip("paho.mqtt.client")
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


class Subscriber:
    """A real paho client on ``topics``; ``messages`` is [(topic, payload text, retain)] in arrival order."""

    def __init__(self, port: int, topics=("#",), user=None, password=None, ca=None):
        import paho.mqtt.client as mqtt
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user:
            self.c.username_pw_set(user, password)
        if ca:
            self.c.tls_set(ca_certs=str(ca))
        self.c.reconnect_delay_set(0.2, 1)
        self.c.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
        self.c.on_message = self._message
        self.c.connect_async("127.0.0.1", port, keepalive=10)
        self.c.loop_start()

    def _message(self, _c, _u, msg):
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[tuple[str, bool]]:
        with self._lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def json(self, topic: str) -> list[dict]:
        return [json.loads(p) for p, _ in self.on(topic)]

    def wait(self, topic: str, payload=None, timeout: float = 15.0, count: int = 1):
        def seen():
            got = [p for p, _ in self.on(topic) if payload is None or p == payload]
            return len(got) >= count and got
        return wait_for(seen, timeout, 0.05, f"{topic} {payload or ''} on the broker")

    def publish(self, topic: str, payload: str):
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def feed(worker, steps, camera="door", tracker=None):
    """Decisions (t, scores) through a real EventTracker into a sink's worker; returns the transitions."""
    from avgn_edge.events import EventSettings, EventTracker
    tracker = tracker or EventTracker(LABELS, EventSettings(threshold=0.5, hold=0.5), camera=camera)
    out = []
    for t, scores in steps:
        r = decision(t, **scores)
        worker.decision(camera, r)
        for tr in tracker.update(r):
            worker.event(camera, tr)
            out.append(tr)
    return out
