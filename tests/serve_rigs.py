"""Rigs for the service tests: an in-process service on a free port, a small HTTP client, and
local RTSP cameras (GStreamer's RTSP server under the system python3, one process each)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from live_rigs import _unavailable

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def http(method: str, url: str, body=None, token: str | None = None, raw: bytes | None = None,
         timeout: float = 10.0) -> tuple[int, object]:
    """(status, parsed JSON or text) with urllib (a real HTTP client over a real socket)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
    return status, (json.loads(text) if "json" in ctype else text)


@contextlib.contextmanager
def running_service(config: dict):
    """The real Service (model, streams, scheduler, API on a free port) in this process."""
    from avgn_edge.serve.config import parse_config
    from avgn_edge.serve.service import Service
    config = {**config, "api": {"port": 0, **config.get("api", {})}}
    svc = Service(parse_config(config))
    svc.start()
    try:
        yield svc, f"http://127.0.0.1:{svc.api.port}"
    finally:
        svc.stop()


def wait_for(predicate, timeout: float, every: float = 0.1, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_process(proc: subprocess.Popen, timeout: float = 5.0):
    """Terminate, and kill what does not stop within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspCamera:
    """One RTSP camera process on 127.0.0.1:port; ``cut()`` stops it, ``restore()`` starts it again."""

    def __init__(self, port: int, fps: int = 10, args=()):
        self.port, self.fps, self.proc, self.args = port, fps, None, [str(a) for a in args]

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def restore(self):
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "rtsp_camera.py"), str(self.port), str(self.fps),
                                      *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            err = self.proc.stderr.read()[-500:]
            self.cut()
            raise RuntimeError(f"RTSP camera on port {self.port} did not start: {line!r} {err}")

    def cut(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


@pytest.fixture()
def rtsp_cameras():
    """Eight local RTSP cameras (640x480 H.264, 10 fps), stopped afterwards."""
    if not os.path.exists(SYSTEM_PYTHON):
        _unavailable(f"RTSP cameras need the system python3 ({SYSTEM_PYTHON}) with python3-gi")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import Gst; Gst.init(None); "
                            "assert Gst.ElementFactory.find('x264enc')"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable("RTSP cameras need python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-ugly "
                     f"for the system python3 ({probe.stderr.strip().splitlines()[-1:]})")
    cams = [RtspCamera(free_port()) for _ in range(8)]
    try:
        for c in cams:
            c.restore()
        yield cams
    finally:
        for c in cams:
            c.cut()


def metrics(url, token=None) -> dict:
    """The /metrics of a service as {sample name: [(labels, value)]}."""
    from prometheus_client.parser import text_string_to_metric_families
    status, text = http("GET", url + "/metrics", token=token)
    assert status == 200
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out
