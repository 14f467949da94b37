"""``live`` with its output flags, as a user runs it (a subprocess on synth://): MQTT through mosquitto,
event clips, the web view; then SIGKILL, and the broker says ``offline`` through the last will."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client")
pytest.importorskip("aiohttp")

from output_rigs import Subscriber, broker  # noqa: F401,E402  (fixture)
from serve_rigs import free_port, wait_for  # noqa: E402
from test_clips import ffprobe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_live_publishes_clips_and_the_web_view_and_a_kill_reads_offline(broker, tmp_path):
    sub = Subscriber(broker.port, ("avgn/#",))
    web = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "avgn_edge.cli.main", "live", "--source", "synth://?seed=3",
                             "--headless", "--backend", "ort", "--duration", "90", "--name", "porch",
                             "--threshold", "0.2", "--mqtt", f"127.0.0.1:{broker.port}", "--clips", str(tmp_path),
                             "--pre-capture", "1", "--post-capture", "1", "--web", str(web),
                             "--events", str(tmp_path / "events.jsonl")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "AVGN_MQTT_PASSWORD": ""})
    try:
        sub.wait("avgn/available", "online", timeout=60)
        ends = wait_for(lambda: [e for e in sub.json("avgn/events") if e["type"] == "end"], 60,
                        what="an event's end on MQTT")
        e = ends[0]["after"]
        assert e["camera"] == "porch" and e["has_clip"] and e["clip"].startswith(str(tmp_path))
        clip = Path(e["clip"])
        wait_for(clip.exists, 20, what="the clip")
        info = ffprobe(clip)
        assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"} and info["first"]["key_frame"] == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/web/porch/state", timeout=5) as r:
            state = json.load(r)
        assert state["top"] and state["audio"]["dBFS"] < 0 and state["events"]
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/web/porch/frame.jpg", timeout=5) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and r.read(3) == b"\xff\xd8\xff"
        sub.wait("avgn/porch/audio/dBFS")
        # the detect switch: off -> no new events; state echoed
        sub.publish("avgn/porch/detect/set", "OFF")
        sub.wait("avgn/porch/detect/state", "OFF")
        time.sleep(0.5)                                  # what was already on its way
        news = len([x for x in sub.json("avgn/events") if x["type"] == "new"])
        time.sleep(3.0)                                  # events are frequent at threshold 0.2 ...
        assert len([x for x in sub.json("avgn/events") if x["type"] == "new"]) == news   # ... but detection is off
        proc.send_signal(signal.SIGKILL)                 # a crash: no goodbye from the process ...
        proc.wait(10)
        sub.wait("avgn/available", "offline", timeout=30)  # ... the broker's last will says it
        lines = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert any(l["type"] == "onset" and l["clip"] == e["clip"] for l in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        out = proc.stdout.read()
        sub.close()
    assert re.search(r"web view on http://127\.0\.0\.1:\d+/", out), out[-2000:]


def test_bad_output_flags_are_one_line_errors(tmp_path):
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    for flags, text in ((["--mqtt", "host:port"], "--mqtt"), (["--web", "70000"], "--web"),
                        (["--pre-capture", "-1"], "--pre-capture"),
                        (["--web", "0", "--web-host", "0.0.0.0"], "token"),
                        (["--web", str(taken.getsockname()[1]), "--duration", "5"], "--web PORT: cannot listen")):
        res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "live", "--source", "synth://",
                              "--headless", *flags], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "AVGN_API_TOKEN"})
        assert res.returncode == 2 and text in res.stderr and "Traceback" not in res.stderr, res.stderr[-800:]
    taken.close()
