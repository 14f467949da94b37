"""Rigs for the real-client tests (``clients`` marker): venvs that ``./dev clients`` (run by
``./dev test``) makes once per version under ~/.cache/avgn-edge/clients/, and a headless Home
Assistant core on 127.0.0.1 with its MQTT integration set up through HA's own config flow over REST.
Without a venv the tests skip (fail under AVGN_REQUIRE_RIGS=1, as ./dev test sets)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from live_rigs import _unavailable
from serve_rigs import free_port, http, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[1]
HA_VERSION = "2024.3.3"            # the newest Home Assistant core that installs on Python 3.11 (./dev's HA_VERSION)
ROS_VERSION = "jazzy-7.1.6"        # ros-jazzy-rclpy from PyPI (./dev's ROS_VERSION)


def clients_dir() -> Path:
    if os.environ.get("AVGN_CLIENTS"):
        return Path(os.environ["AVGN_CLIENTS"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avgn-edge" / "clients"


def client_venv(name: str) -> Path:
    """The ready venv ``<clients>/<name>`` (``./dev clients`` made it), else skip / fail."""
    d = clients_dir() / name
    if not (d / ".ready").is_file():
        _unavailable(f"the real-client venv {d} is not set up: run ./dev clients (./dev test does)")
    return d


HA_CONFIG = """\
homeassistant:
  name: avgn-test
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: US
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""


class HomeAssistant:
    """``hass`` from the client venv on a free 127.0.0.1 port: only http, api, config and onboarding
    (no default_config: nothing reaches the internet), ``--skip-pip``; ``setup_mqtt(port)`` runs
    onboarding, takes a token and adds the MQTT integration through the config flow."""

    def __init__(self, venv: Path, workdir: Path):
        self.venv, self.dir, self.port = venv, Path(workdir), free_port()
        self.url, self.token, self.proc = f"http://127.0.0.1:{self.port}", None, None
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "configuration.yaml").write_text(HA_CONFIG.format(port=self.port))

    def start(self, timeout: float = 240.0):
        self.log = open(self.dir / "hass.out", "ab")
        self.proc = subprocess.Popen([str(self.venv / "bin" / "hass"), "-c", str(self.dir), "--skip-pip"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"hass exited ({self.proc.returncode}): {self.tail()}")
            if "Activating recovery mode" in self.tail(10**6):      # a missing requirement (--skip-pip): say it now
                raise AssertionError("Home Assistant started in recovery mode (is ./dev clients' venv complete?): "
                                     + " | ".join(l for l in self.tail(10**6).splitlines() if "ERROR" in l)[:3000])
            try:
                return http("GET", f"{self.url}/api/onboarding", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(up, timeout, 0.5, "Home Assistant's HTTP server")
        return self

    def tail(self, n: int = 3000) -> str:
        p = self.dir / "home-assistant.log"
        return (p.read_text(errors="replace") if p.exists() else (self.dir / "hass.out").read_text(errors="replace"))[-n:]

    def onboard(self):
        client = f"{self.url}/"
        status, body = http("POST", f"{self.url}/api/onboarding/users",
                            {"client_id": client, "name": "Test", "username": "test", "password": "avgn-test-pw",
                             "language": "en"})
        assert status == 200, (status, body)
        data = urllib.parse.urlencode({"grant_type": "authorization_code", "code": body["auth_code"],
                                       "client_id": client}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/auth/token", data=data), timeout=10) as r:
            import json
            self.token = json.loads(r.read())["access_token"]

    def api(self, method: str, path: str, body=None):
        return http(method, f"{self.url}{path}", body, token=self.token, timeout=15)

    def setup_mqtt(self, broker_port: int):
        """HA's own UI flow for MQTT, over REST: the entry must load (HA connected to the broker)."""
        self.onboard()
        status, flow = self.api("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        assert status == 200 and flow.get("type") == "form", (status, flow)
        status, done = self.api("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                                {"broker": "127.0.0.1", "port": broker_port})
        assert status == 200 and done.get("type") == "create_entry", (status, done)
        wait_for(lambda: [e for e in self.api("GET", "/api/config/config_entries/entry")[1]
                          if e["domain"] == "mqtt" and e["state"] == "loaded"], 60, 0.5, "the MQTT entry to load")

    def state(self, entity_id: str) -> dict | None:
        status, body = self.api("GET", f"/api/states/{entity_id}")
        return body if status == 200 else None

    def states(self, prefix: str = "") -> dict[str, dict]:
        status, body = self.api("GET", "/api/states")
        assert status == 200, (status, body)
        return {s["entity_id"]: s for s in body if s["entity_id"].startswith(prefix) or prefix in s["entity_id"]}

    def wait_state(self, entity_id: str, value: str, timeout: float = 30.0) -> dict:
        def reached():
            s = self.state(entity_id)
            return s is not None and s["state"] == value and s
        try:
            return wait_for(reached, timeout, 0.1, f"{entity_id} = {value}")
        except AssertionError:
            raise AssertionError(f"{entity_id} is {self.state(entity_id)}, not {value!r} after {timeout} s") from None

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, timeout=20)
            self.proc = None
            self.log.close()


def elapsed(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f} s"
