"""Issue #23's MQTT / Home Assistant findings, each against a real mosquitto (or the real service):
labels made safe in every topic, the HA event entity, the dBFS level sensor, discovery removed with
a deleted stream (and not announced again), detection switched off during an open event."""

import json

import numpy as np
import pytest

from output_rigs import Subscriber, broker  # noqa: F401  (fixture)
from serve_rigs import http, running_service, wait_for

from avgn_edge.errors import ConfigError
from avgn_edge.sinks.base import Worker
from avgn_edge.sinks.mqtt import MqttSettings, MqttSink
from avgn_edge.sinks.mqtt_discovery import discovery_messages

ODD = ("dog bark", "glass#break", "door/knock", "background")


def odd_decision(t, **scores):
    from avgn_edge.runtime.result import Result
    s = np.array([scores.get(l, 0.0) for l in ODD], np.float32)
    s[-1] = max(0.0, 1.0 - s.sum())
    return Result(s, ODD, saliency=np.linspace(0, 1, 4, dtype=np.float32), timestamps=t - 0.25 * np.arange(4)[::-1],
                  indices=np.array([3, 1]), boxes=np.array([[1, 2, 33, 34], [5, 6, 37, 38]], np.float32))


def test_labels_with_wildcards_and_slashes_are_safe_in_every_topic(broker):
    from avgn_edge.events import EventSettings, EventTracker
    sub = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    w = Worker(MqttSink(MqttSettings(port=broker.port, discovery=True), ODD, cameras=["door"]))
    try:
        configs = wait_for(lambda: len([t for t, *_ in sub.messages if t.startswith("homeassistant/binary")]) == 3
                           and {t: json.loads(p) for t, p, _ in sub.messages if t.startswith("homeassistant/")},
                           15, what="the camera's discovery")
        states = {c["state_topic"] for t, c in configs.items() if "/binary_sensor/" in t}
        assert states == {"avgn/door/dog_bark", "avgn/door/glass_break", "avgn/door/door_knock"}
        for topic in states:                                        # announced OFF where discovery points
            sub.wait(topic, "OFF")
        tracker = EventTracker(ODD, EventSettings(threshold=0.5, hold=0.5), camera="door")
        for t, sc in [(1.0, {"glass#break": 0.9}), (1.5, {}), (2.0, {}), (2.5, {})]:
            for tr in tracker.update(odd_decision(t, **sc)):
                w.event("door", tr)
        sub.wait("avgn/door/glass_break", "OFF", count=2)
        assert [p for p, _ in sub.on("avgn/door/glass_break")] == ["OFF", "ON", "OFF"]
        assert sub.json("avgn/events")[0]["after"]["label"] == "glass#break"     # the record keeps the real name
    finally:
        w.close()
        sub.close()


def test_labels_that_share_a_topic_are_refused_in_one_line():
    with pytest.raises(ConfigError) as e:
        MqttSink(MqttSettings(port=1), ["a+b", "a#b", "c"], cameras=["door"])
    assert "share the topic" in str(e.value) and "\n" not in str(e.value)


def test_the_level_sensor_is_dbfs_without_a_device_class_and_expires():
    msgs = dict(discovery_messages(MqttSettings(), "door", ["bell"]))
    level = msgs["homeassistant/sensor/avgn/door_audio_dbfs/config"]
    assert "device_class" not in level and level["unit_of_measurement"] == "dBFS"
    assert level["state_class"] == "measurement" and level["expire_after"] >= 5


def test_an_event_entity_per_camera_fires_the_label_when_an_event_starts(broker):
    from output_rigs import LABELS, feed
    sub = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    w = Worker(MqttSink(MqttSettings(port=broker.port, discovery=True), LABELS, cameras=["door"]))
    try:
        cfg = json.loads(sub.wait("homeassistant/event/avgn/door_events/config")[0])
        assert cfg["event_types"] == ["bell", "buzz"] and cfg["state_topic"] == "avgn/door/events"
        assert cfg["availability_topic"] == "avgn/available" and cfg["device"]["identifiers"] == ["avgn_door"]
        feed(w, [(1.0, {"bell": 0.9}), (1.5, {}), (2.0, {}), (2.5, {})])
        fired = json.loads(sub.wait("avgn/door/events")[0])
        new = sub.json("avgn/events")[0]["after"]
        assert fired["event_type"] == "bell" and fired["id"] == new["id"] and fired["score"] == new["score"]
        sub.wait("avgn/door/bell", "OFF", count=2)
        assert len(sub.on("avgn/door/events")) == 1                 # fired once per event, not on its end
    finally:
        w.close()
        sub.close()


def test_a_removed_camera_loses_its_discovery_and_is_not_announced_again(broker):
    from output_rigs import LABELS
    sub = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    sink = MqttSink(MqttSettings(port=broker.port, discovery=True), LABELS, cameras=["door", "yard"])
    w = Worker(sink)
    try:
        sub.wait("homeassistant/switch/avgn/yard_detect/config")
        import numpy as np
        w.submit(sink.frame, "yard", None, np.zeros(800, np.float32), 0.0)    # sound waiting for its level
        w.submit(sink.remove_camera, "yard")
        yard = {t for t, *_ in sub.messages if t.startswith("homeassistant/") and "yard" in t}
        assert len(yard) == 5                          # 2 binary sensors, the event entity, the level, the switch
        cleared = wait_for(lambda: (yard | {"avgn/yard/bell", "avgn/yard/detect/state"})
                           <= {t for t, p, _ in sub.messages if p == ""}, 15, what="empty retained configs")
        assert cleared and "yard" not in sink._audio and "yard" not in sink._last_audio   # nothing kept
        late = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))   # nothing of yard is retained any more
        late.wait("homeassistant/switch/avgn/door_detect/config")
        assert not [t for t, *_ in late.messages if "yard" in t]
        late.close()
        broker.stop()                                                   # a reconnect announces door, not yard
        broker.start()
        before = len(sub.messages)
        wait_for(lambda: [1 for t, *_ in sub.messages[before:] if t == "homeassistant/switch/avgn/door_detect/config"],
                 30, what="the camera announced again after the reconnect")
        assert not [t for t, *_ in sub.messages[before:] if "yard" in t]
    finally:
        w.close()
        sub.close()


@pytest.mark.slow
def test_detection_switched_off_during_an_event_ends_it_everywhere(broker, tmp_path):
    """REST PATCH enabled=false (what the MQTT switch calls) while an event is open: the end goes
    out on MQTT (label OFF, retained), in the camera's JSON lines and on ROS 2 (zenoh, loopback,
    scouting off). Then REST DELETE: the stream's discovery is emptied."""
    sub = Subscriber(broker.port, ("avgn/#", "homeassistant/#"))
    ros_events, zport = ros_listener()
    config = {"detect": {"threshold": 0.2, "max_not_heard": 30.0},       # long hold: only the switch ends it
              "mqtt": {"host": "127.0.0.1", "port": broker.port, "discovery": True},
              "ros2": {"rclpy": "never", "scout": False, "domain": 3, "listen": [f"tcp/127.0.0.1:{zport}"]},
              "jsonl": {"path": str(tmp_path / "{camera}.jsonl")},
              "cameras": {"yard": {"source": "synth://?seed=3"}}}
    try:
        with running_service(config) as (svc, url):
            new = wait_for(lambda: [e for e in sub.json("avgn/events") if e["type"] == "new"], 90,
                           what="an event")[0]["after"]
            status, body = http("PATCH", f"{url}/api/streams/yard", {"enabled": False})
            assert status == 200 and body["enabled"] is False
            end = wait_for(lambda: [e for e in sub.json("avgn/events") if e["type"] == "end"
                                    and e["after"]["id"] == new["id"]], 15, what="the event's end")[0]["after"]
            assert end["end_time"] is not None
            wait_for(lambda: sub.on(f"avgn/yard/{new['label']}")[-1:] == [("OFF", False)], 15,
                     what=f"{new['label']} OFF: {sub.on('avgn/yard/' + new['label'])}")
            assert not [e for e in svc.get_stream("yard").info()["active_events"]]
            late = Subscriber(broker.port, (f"avgn/yard/{new['label']}",))      # retained OFF on the broker
            assert late.wait(f"avgn/yard/{new['label']}")[0] == "OFF"
            late.close()
            assert http("DELETE", f"{url}/api/streams/yard")[0] in (200, 204)
            gone = "homeassistant/switch/avgn/yard_detect/config"
            wait_for(lambda: sub.on(gone)[-1][0] == "", 15, what="the deleted stream's discovery emptied")
            wait_for(lambda: [e for e in ros_events() if e["type"] == "end" and e["after"]["id"] == new["id"]], 15,
                     what="the end on ROS 2")
        lines = [json.loads(l) for l in (tmp_path / "yard.jsonl").read_text().splitlines()]
        assert any(r.get("type") == "offset" and r.get("id") == new["id"] for r in lines)
    finally:
        sub.close()
        ros_events.close()


def ros_listener():
    """A zenoh peer that connects (retrying) to serve's ROS 2 endpoint: (the events heard so far, the port)."""
    zenoh = pytest.importorskip("zenoh")
    from serve_rigs import free_port
    from avgn_edge.sinks.ros2 import STRING, typestore
    port, ts, got = free_port(), typestore(), []
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    conf.insert_json5("connect/timeout_ms", "-1")                   # serve is not listening yet: keep trying
    session = zenoh.open(conf)
    session.declare_subscriber("3/avgn/classification/events/**", lambda s: got.append(
        json.loads(ts.deserialize_cdr(bytes(s.payload.to_bytes()), STRING).data)))

    def events():
        return list(got)
    events.close = session.close
    return events, port
