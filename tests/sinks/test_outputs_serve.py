"""serve's outputs end to end, on the real model and synth:// streams: MQTT through mosquitto, event
clips checked with ffprobe, the web view in headless Chromium (a screenshot kept under docs/), the
counters in /metrics; the detect switch over MQTT; the API's token rule on the web view."""

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("paho.mqtt.client")

from output_rigs import Mosquitto, Subscriber  # noqa: E402
from serve_rigs import http, running_service, wait_for  # noqa: E402
from test_clips import ffprobe  # noqa: E402
from serve_rigs import metrics  # noqa: E402

from live_rigs import _unavailable  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "web-t0ken"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if shutil.which("mosquitto") is None:
        _unavailable("the MQTT tests need Debian's mosquitto: apt-get install mosquitto")
    work = tmp_path_factory.mktemp("outputs")
    broker = Mosquitto(work).start()
    sub = Subscriber(broker.port, ("avgn/#",))
    config = {"api": {"token": TOKEN}, "detect": {"threshold": 0.2},
              "mqtt": {"host": "127.0.0.1", "port": broker.port, "stats_interval": 1},
              "record": {"path": str(work / "clips"), "pre_capture": 1.0, "post_capture": 1.0},
              "jsonl": {"path": str(work / "{camera}.jsonl")},
              "cameras": {"yard": {"source": "synth://?seed=3"}}}
    try:
        with running_service(config) as (svc, url):
            yield svc, url, sub, work
    finally:
        sub.close()
        broker.stop()


@pytest.mark.slow
def test_events_reach_mqtt_with_their_clip_and_the_clip_has_sound(served):
    svc, url, sub, work = served
    sub.wait("avgn/available", "online")
    ends = wait_for(lambda: [e for e in sub.json("avgn/events") if e["type"] == "end"], 60, what="an event's end")
    e = ends[0]["after"]
    assert e["camera"] == "yard" and e["label"] in svc.rec.labels and e["label"] != "background"
    assert e["has_clip"] and e["clip"] == str(work / "clips" / "yard" / e["label"] / f"{e['id']}.mp4")
    assert [p for p, _ in sub.on(f"avgn/yard/{e['label']}")][:3] == ["OFF", "ON", "OFF"]
    clip = Path(e["clip"])
    wait_for(clip.exists, 20, what="the clip (post_capture after the end)")
    info = ffprobe(clip)
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"} and info["first"]["key_frame"] == 1
    assert float(info["format"]["duration"]) >= 1.0 + (e["end_time"] - e["start_time"]) + 1.0 - 0.6
    assert Path(e["snapshot"]).is_file()
    offsets = [json.loads(l) for l in (work / "yard.jsonl").read_text().splitlines() if '"offset"' in l]
    assert any(o["id"] == e["id"] and o["clip"] == e["clip"] for o in offsets)
    stats = json.loads(sub.wait("avgn/stats")[-1])
    assert stats["cameras"]["yard"]["decisions"] >= 1 and stats["service"]["backend"] == "ort"
    m = metrics(url, TOKEN)
    published = {l["output"]: v for l, v in m["avgn_output_published_total"]}
    assert published["mqtt"] > 0 and all(v == 0 for l, v in m["avgn_output_lost_total"])
    assert {l["output"] for l, _ in m["avgn_output_dropped_total"]} >= {"mqtt", "web", "jsonl", "clips"}
    assert any(l["output"] == "clips" and v >= 1 for l, v in m["avgn_output_clips_total"])


def test_the_web_view_follows_the_api_token(served):
    svc, url, sub, _ = served
    assert http("GET", url + "/")[0] == 401 and http("GET", url + "/web/cameras")[0] == 401
    status, page = http("GET", url + f"/?token={TOKEN}")
    assert status == 200 and "<title>avgn-edge</title>" in page
    wait_for(lambda: http("GET", url + "/web/cameras", token=TOKEN) == (200, {"cameras": ["yard"]}), 10,
             what="the camera listed")
    assert http("GET", url + "/web/nope/state", token=TOKEN)[0] == 404
    assert http("GET", url + "/web/media/yard/x/../../etc.mp4", token=TOKEN)[0] == 404
    # a stream added at run time appears in the view, and leaves it when removed
    assert http("POST", url + "/api/streams", {"name": "lane", "source": "synth://?seed=5"}, token=TOKEN)[0] == 201
    wait_for(lambda: "lane" in http("GET", url + "/web/cameras", token=TOKEN)[1]["cameras"], 20, what="lane")
    sub.wait("avgn/lane/detect/state", "ON")                     # announced on MQTT when added
    assert http("DELETE", url + "/api/streams/lane", token=TOKEN)[0] == 200
    wait_for(lambda: http("GET", url + "/web/cameras", token=TOKEN)[1]["cameras"] == ["yard"], 10, what="lane gone")


@pytest.mark.slow
def test_the_web_view_in_headless_chromium(served, tmp_path):
    """The screenshot goes to docs/web_view.png with AVGN_UPDATE_DOCS=1 (else to a temporary folder)."""
    from browser_rigs import Chromium
    svc, url, _, _ = served
    wait_for(lambda: svc.recent_events(), 60, what="an event")
    browser = Chromium()
    try:
        browser.open(f"{url}/?token={TOKEN}")

        def frame_hash():                      # what the <img> shows now, drawn into a canvas
            return browser.eval("""(() => { const i = document.getElementById('view');
                if (!i.naturalWidth) return null;
                const c = document.createElement('canvas'); c.width = 64; c.height = 64;
                const g = c.getContext('2d'); g.drawImage(i, 0, 0, 64, 64);
                const d = g.getImageData(0, 0, 64, 64).data; let h = 0;
                for (let k = 0; k < d.length; k += 7) h = (h * 31 + d[k]) >>> 0; return h; })()""")
        first = wait_for(frame_hash, 20, 0.3, what="the stream's first frame")
        wait_for(lambda: frame_hash() not in (None, first), 20, 0.3, what="the image to update")
        wait_for(lambda: browser.eval("document.querySelectorAll('#events .ev').length"), 30, 0.3,
                 what="an event in the page")
        assert browser.eval("document.querySelectorAll('#top .bar').length") >= 3
        assert "dBFS" in browser.eval("document.getElementById('db').textContent")
        browser.pump(2.0)                                            # the page keeps running, quietly
        shot = ROOT / "docs" / "web_view.png" if os.environ.get("AVGN_UPDATE_DOCS") == "1" else tmp_path / "web.png"
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000
        assert browser.errors == [], browser.errors
    finally:
        browser.close()


def test_detect_switches_off_and_on_over_mqtt(served):
    svc, url, sub, _ = served
    sub.wait("avgn/yard/detect/state", "ON")
    sub.publish("avgn/yard/detect/set", "OFF")
    sub.wait("avgn/yard/detect/state", "OFF")
    assert svc.get_stream("yard").status == "disabled"
    sub.publish("avgn/yard/detect/set", "ON")
    sub.wait("avgn/yard/detect/state", "ON", count=2)
    wait_for(lambda: svc.get_stream("yard").status == "online", 20, what="the stream back online")


def test_output_sections_resolve_per_camera_and_bad_ones_name_the_key():
    from avgn_edge.errors import ConfigError
    from avgn_edge.serve.config import parse_config
    cfg = parse_config({"record": {"path": "clips", "pre_capture": 2, "retain": {"days": 3}},
                        "cameras": {"a": {"source": "synth://"},
                                    "b": {"source": "synth://", "record": {"enabled": False}},
                                    "c": {"source": "synth://", "record": {"post_capture": 9}}}})
    a, b, c = (cfg.cameras[n].record for n in "abc")
    assert a.enabled and a.pre_capture == 2 and a.retain.days == 3 and not b.enabled
    assert c.post_capture == 9 and c.pre_capture == 2                       # Frigate's rule: key by key
    assert parse_config({"cameras": {"a": {"source": "synth://"}}}).cameras["a"].record is None   # off by default
    for data, key in (({"mqtt": {"port": 1883}}, "mqtt.host: required"),
                      ({"mqtt": {"host": "h", "topic_prefix": "a/#"}}, "mqtt.topic_prefix"),
                      ({"record": {"pre_capture": -1}}, "record.pre_capture"),
                      ({"record": {"retain": {"dayz": 1}}}, "record.retain.dayz: unknown key"),
                      ({"ros2": {"rclpy": "maybe"}}, "ros2.rclpy")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config({**data, "cameras": {}})
