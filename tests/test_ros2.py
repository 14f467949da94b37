"""ROS 2 without ROS: the sink publishes over zenoh as rmw_zenoh does; a second zenoh session on
loopback subscribes to the data keys and decodes the CDR with rosbags."""

import json
import threading
import time

import pytest

pytest.importorskip("zenoh")
pytest.importorskip("rosbags")

import zenoh  # noqa: E402
import zenoh.ext as ze  # noqa: E402

from output_rigs import LABELS, feed  # noqa: E402
from serve_rigs import free_port, wait_for  # noqa: E402

from avgn_edge.sinks.base import Worker  # noqa: E402
from avgn_edge.sinks.ros2 import CLASSIFICATION, STRING, Ros2Settings, Ros2Sink, data_key, typestore  # noqa: E402


def test_decisions_and_events_reach_a_second_zenoh_session_as_ros2_cdr():
    port = free_port()
    sink = Ros2Sink(Ros2Settings(listen=[f"tcp/127.0.0.1:{port}"], rclpy="never", scout=False))
    w = Worker(sink)
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    ts = typestore()
    got, lock = {"decisions": [], "events": []}, threading.Lock()
    keys = {"decisions": data_key(0, "/avgn/classification", CLASSIFICATION, ts.hash_rihs01(CLASSIFICATION)),
            "events": data_key(0, "/avgn/classification/events", STRING, ts.hash_rihs01(STRING))}
    assert keys["decisions"].startswith("0/avgn/classification/vision_msgs::msg::dds_::Classification_/RIHS01_")
    with zenoh.open(conf) as other:
        def listener(kind):
            def on(sample):
                with lock:
                    got[kind].append((bytes(sample.payload.to_bytes()), sample.attachment))
            return on
        subs = [other.declare_subscriber(keys[k], listener(k)) for k in keys]
        wait_for(lambda: bool(list(other.liveliness().get("@ros2_lv/**", timeout=1.0))), 10,
                 what="the publisher's liveliness tokens")
        for _ in range(50):                                    # until the subscription reached the publisher
            feed(w, [(1.0, {"bell": 0.7})])
            time.sleep(0.1)
            if got["decisions"]:
                break
        feed(w, [(2.0, {}), (2.5, {}), (3.0, {})])
        wait_for(lambda: got["decisions"] and got["events"], 10, what="ROS 2 messages on loopback")
        payload, attachment = got["decisions"][0]
        msg = ts.deserialize_cdr(payload, CLASSIFICATION)
        assert msg.header.frame_id == "door" and msg.header.stamp.sec > 1_600_000_000   # epoch time
        assert [r.class_id for r in msg.results][0] == "bell" and msg.results[0].score == pytest.approx(0.7, abs=1e-6)
        assert {r.class_id for r in msg.results} == set(LABELS)
        seq, stamp, gid = ze.z_deserialize(tuple[ze.Int64, ze.Int64, bytes], attachment)   # rmw_zenoh >= 0.2.4
        assert seq >= 1 and len(gid) == 16 and stamp > 0
        ev = json.loads(ts.deserialize_cdr(got["events"][0][0], STRING).data)
        assert ev["type"] in ("new", "end") and ev["after"]["label"] == "bell"
        for s in subs:
            s.undeclare()
    w.close()
    assert sink.counters()["ros2_messages"] >= 2
