"""The MQTT sink against Debian's mosquitto on a free 127.0.0.1 port, heard by a real paho subscriber:
Frigate's topics and payloads, retained flags, Home Assistant discovery, the detect switch, stats,
a broker restart (messages resume, losses counted), user/password."""

import json
import time

import pytest

from output_rigs import LABELS, Mosquitto, Subscriber, broker, feed  # noqa: F401  (fixture)
from serve_rigs import wait_for

from avgn_edge.sinks.base import Worker
from avgn_edge.sinks.mqtt import MqttSettings, MqttSink
from avgn_edge.sinks.records import Media

BELL = [(1.0, {}), (1.5, {"bell": 0.6}), (2.0, {"bell": 0.9}), (2.5, {}), (3.0, {}), (3.5, {})]


def sink(port, **kw):
    switches = {"door": True}

    def on_set(camera, feature, on):
        if camera not in switches:
            return None
        switches[camera] = on
        return on
    s = MqttSink(MqttSettings(port=port, **kw), LABELS, cameras=["door"], on_set=on_set,
                 stats=lambda: {"cameras": {"door": {"decisions": 6}}}, state=lambda cam, f: switches[cam],
                 media=lambda cam: Media("/clips"))
    return Worker(s), switches


def test_events_labels_audio_stats_and_discovery_follow_frigate(broker):
    sub = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    w, switches = sink(broker.port, discovery=True, stats_interval=0.3, audio_interval=0.2)
    try:
        sub.wait("avgn/available", "online")
        feed(w, BELL)
        import numpy as np
        for i in range(4):                                     # audio: a 0.1-amplitude tone -> about -23 dBFS
            w.frame("door", None, 0.1 * np.sin(np.arange(1600) / 3).astype(np.float32), 10 + 0.25 * i)
        events = [json.loads(p) for p in sub.wait("avgn/events", count=3)]
        assert [e["type"] for e in events] == ["new", "update", "end"]
        new, upd, end = events
        for e in events:
            assert {"before", "after"} <= set(e)
            assert {"id", "camera", "label", "sub_label", "score", "top_score", "start_time", "end_time", "box",
                    "has_clip", "has_snapshot", "clip", "snapshot", "evidence"} <= set(e["after"])
        assert new["after"]["label"] == "bell" and new["after"]["camera"] == "door" and new["after"]["end_time"] is None
        assert abs(new["after"]["start_time"] - time.time()) < 3600 * 24 * 365 * 60   # epoch seconds, not monotonic
        assert upd["before"]["top_score"] == pytest.approx(0.6) and upd["after"]["top_score"] == pytest.approx(0.9)
        assert end["after"]["end_time"] is not None and end["after"]["has_clip"] is True
        assert end["after"]["clip"].startswith("/clips/door/bell/") and end["after"]["clip"].endswith(".mp4")
        assert len(end["after"]["evidence"]) == 2 and {"t", "saliency", "box"} <= set(end["after"]["evidence"][0])
        assert end["after"]["box"] == [1.0, 2.0, 33.0, 34.0]
        sub.wait("avgn/door/bell", "OFF", count=2)               # OFF at start, ON, OFF
        assert [p for p, _ in sub.on("avgn/door/bell")] == ["OFF", "ON", "OFF"]
        assert [p for p, _ in sub.on("avgn/door/buzz")] == ["OFF"]
        dbfs = float(sub.wait("avgn/door/audio/dBFS")[0])
        assert -26 < dbfs < -20 and float(sub.wait("avgn/door/audio/rms")[0]) > 2000
        stats = json.loads(sub.wait("avgn/stats")[0])
        assert stats["cameras"]["door"]["decisions"] == 6 and "timestamp" in stats
        # the detect switch: set -> the host's callback -> state echoed (retained)
        sub.publish("avgn/door/detect/set", "OFF")
        sub.wait("avgn/door/detect/state", "OFF")
        assert switches["door"] is False
        sub.publish("avgn/nope/detect/set", "OFF")              # no such camera: no echo, nothing breaks
        sub.publish("avgn/door/detect/set", "maybe")            # not ON/OFF: ignored
        # Home Assistant discovery: a binary sensor per label (not background), audio sensor, switch
        configs = {t: json.loads(p) for t, p, _ in sub.messages if t.startswith("homeassistant/")}
        bell = configs["homeassistant/binary_sensor/avgn/door_bell/config"]
        assert bell["state_topic"] == "avgn/door/bell" and bell["availability_topic"] == "avgn/available"
        assert not any("background" in t for t in configs)
        assert configs["homeassistant/switch/avgn/door_detect/config"]["command_topic"] == "avgn/door/detect/set"
        assert "homeassistant/sensor/avgn/door_audio_dbfs/config" in configs
    finally:
        sub.close()
    # a subscriber arriving later gets the retained state: availability, label states, switch, discovery
    late = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    try:
        late.wait("avgn/door/detect/state", "OFF")
        late.wait("homeassistant/binary_sensor/avgn/door_bell/config")
        retained = {t: (p, r) for t, p, r in late.messages}
        assert retained["avgn/available"] == ("online", True) and retained["avgn/door/bell"] == ("OFF", True)
        assert retained["homeassistant/switch/avgn/door_detect/config"][1] is True
        assert "avgn/events" not in retained                     # events are not retained
        w.close()
        late.wait("avgn/available", "offline")                   # a clean stop says offline itself
        assert w.counters()["lost"] == 0 and w.counters()["dropped"] == 0 and w.counters()["published"] > 10
    finally:
        late.close()


def test_a_broker_restart_resumes_the_messages_and_counts_what_was_lost(broker):
    sub = Subscriber(broker.port, ("avgn/events",))
    w, _ = sink(broker.port, outbox=4, stats_interval=0)
    try:
        wait_for(lambda: w.counters()["connects"] == 1, 10, what="the first connection")
        feed(w, BELL)
        sub.wait("avgn/events", count=3)
        broker.stop()
        wait_for(lambda: not w.sink._connected, 10, what="the sink to notice the broker is gone")
        t0 = time.monotonic()
        feed(w, [(10 + 0.5 * i, {"buzz": 0.9} if i % 4 < 2 else {}) for i in range(40)])   # 10 events: 20+ messages
        wait_for(lambda: w._q.empty(), 5, what="the worker to take every call")
        assert time.monotonic() - t0 < 2.0                       # nothing waited on the broker
        lost = w.counters()["lost"]
        assert lost > 0 and len(w.sink._outbox) == 4             # the outbox kept the newest 4
        broker.start()
        wait_for(lambda: w.counters()["connects"] == 2, 40, what="the sink to reconnect (backoff)")
        feed(w, [(40.0, {"bell": 0.9}), (40.5, {}), (41.0, {}), (41.5, {})])
        wait_for(lambda: any(json.loads(p)["after"]["start_time"] and json.loads(p)["after"]["label"] == "bell"
                             and json.loads(p)["type"] == "end" for p, _ in sub.on("avgn/events")[3:]),
                 20, what="events after the restart")
        after = [json.loads(p) for p, _ in sub.on("avgn/events")[3:]]
        assert any(e["after"]["label"] == "buzz" for e in after)  # the outbox went out after the reconnect
        assert w.counters()["lost"] == lost                      # nothing more lost once connected
    finally:
        sub.close()
        w.close()


def test_user_and_password(tmp_path):
    pytest.importorskip("paho.mqtt.client")
    b = Mosquitto(tmp_path, passwords={"ha": "s3cret"}).start()
    try:
        sub = Subscriber(b.port, ("avgn/available",), user="ha", password="s3cret")
        good, _ = sink(b.port, user="ha", password="s3cret", stats_interval=0)
        bad, _ = sink(b.port, user="ha", password="wrong", stats_interval=0, client_id="intruder")
        sub.wait("avgn/available", "online")
        wait_for(lambda: good.counters()["connects"] == 1, 10, what="the good client")
        time.sleep(0.5)
        assert bad.counters()["connects"] == 0                   # refused: counted as never connected
        good.close()
        bad.close()
        sub.close()
    finally:
        b.stop()


def test_tls_with_a_ca_file(tmp_path):
    pytest.importorskip("paho.mqtt.client")
    b = Mosquitto(tmp_path, tls=True).start()
    try:
        sub = Subscriber(b.port, ("avgn/#",), ca=b.ca)
        w, _ = sink(b.port, tls_ca_certs=str(b.ca), stats_interval=0)
        sub.wait("avgn/available", "online")
        feed(w, BELL)
        assert [json.loads(p)["type"] for p in sub.wait("avgn/events", count=3)] == ["new", "update", "end"]
        w.close()
        sub.close()
    finally:
        b.stop()


def test_no_broker_at_start_is_said_once_and_nothing_waits(caplog):
    from serve_rigs import free_port
    w, _ = sink(free_port(), outbox=3, stats_interval=0)
    with caplog.at_level("WARNING", logger="avgn_edge.sinks.mqtt"):
        t0 = time.monotonic()
        feed(w, [(1.0 + 0.5 * i, {"bell": 0.9} if i % 4 < 2 else {}) for i in range(16)])
        wait_for(lambda: w._q.empty(), 5, what="the worker to take every call")
        assert time.monotonic() - t0 < 2.0
        wait_for(lambda: "cannot reach the broker" in caplog.text, 10, what="the warning")
    assert caplog.text.count("cannot reach the broker") == 1 and w.counters()["connects"] == 0
    assert w.counters()["lost"] > 0 and len(w.sink._outbox) == 3
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 5.0


def test_bad_addresses_are_one_line_errors():
    from avgn_edge.errors import ConfigError
    assert MqttSettings.parse_address("broker.lan:1884").port == 1884
    assert MqttSettings.parse_address("broker.lan").port == 1883
    for bad in ("broker:x", ":1883"):
        with pytest.raises(ConfigError, match="--mqtt"):
            MqttSettings.parse_address(bad)
