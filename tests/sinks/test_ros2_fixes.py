"""Issue #23's ROS 2 findings: ROS_DOMAIN_ID honoured (rclpy and the zenoh key), one clear line when
vision_msgs is what is missing, the current rmw_zenoh attachment (decoded by zenoh.ext, byte layout
checked), one gid per publisher, zenoh scouting switchable from serve and live. Zenoh here runs with
multicast scouting off, on loopback."""

import json
import logging
import sys
import threading
import time
import types

import pytest

pytest.importorskip("zenoh")
pytest.importorskip("rosbags")

import zenoh  # noqa: E402
import zenoh.ext as ze  # noqa: E402

from output_rigs import feed  # noqa: E402
from serve_rigs import free_port, wait_for  # noqa: E402

from avgn_edge.errors import ConfigError  # noqa: E402
from avgn_edge.sinks.base import Worker  # noqa: E402
from avgn_edge.sinks import ros2  # noqa: E402
from avgn_edge.sinks.ros2 import Ros2Settings, Ros2Sink  # noqa: E402


def capture(port, keyexpr="**"):
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    session, got, lock = zenoh.open(conf), [], threading.Lock()

    def on(sample):
        with lock:
            got.append((str(sample.key_expr), bytes(sample.attachment.to_bytes())))
    sub = session.declare_subscriber(keyexpr, on)
    return session, sub, got


def test_the_attachment_is_current_rmw_zenohs_and_each_publisher_has_its_own_gid(monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "17")
    port = free_port()
    sink = Ros2Sink(Ros2Settings(listen=[f"tcp/127.0.0.1:{port}"], rclpy="never", scout=False))
    w = Worker(sink)
    session, sub, got = capture(port, "17/**")                  # the key's domain follows ROS_DOMAIN_ID
    try:
        for _ in range(50):
            feed(w, [(1.0, {"bell": 0.7})])
            time.sleep(0.1)
            if any("Classification" in k for k, _ in got):
                break
        feed(w, [(2.0, {}), (2.5, {}), (3.0, {})])
        wait_for(lambda: any("String" in k for k, _ in got), 10, what="an event sample")
        gids = {}
        for key, att in got:
            assert key.startswith("17/avgn/classification")
            # rmw_zenoh_cpp >= 0.2.4 (attachment_helpers.cpp): i64 seq, i64 ts, then the gid as a
            # zenoh-serialized sequence (LEB128 length 16 + 16 bytes): 33 bytes, no keys
            assert len(att) == 33 and att[16] == 16
            seq, stamp, gid = ze.z_deserialize(tuple[ze.Int64, ze.Int64, bytes], zenoh.ZBytes(att))
            assert seq >= 1 and stamp > 1_600_000_000 * 10**9 and len(gid) == 16
            assert seq == int.from_bytes(att[:8], "little") and gid == att[17:]
            gids.setdefault(key.split("/")[-2], set()).add(gid)
        assert all(len(g) == 1 for g in gids.values()) and len(set.union(*gids.values())) == 2
    finally:
        sub.undeclare()
        session.close()
        w.close()


def test_the_domain_defaults_to_the_environment_as_rcl_does(monkeypatch):
    from avgn_edge.serve.config import Ros2Config
    assert Ros2Settings().domain is None and Ros2Config().domain is None
    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    assert ros2.ros_domain(None) == 0
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    assert ros2.ros_domain(None) == 42 and ros2.ros_domain(3) == 3
    monkeypatch.setenv("ROS_DOMAIN_ID", "robot")
    with pytest.raises(ConfigError) as e:
        Ros2Sink(Ros2Settings(rclpy="never", scout=False))
    assert "ROS_DOMAIN_ID" in str(e.value) and "\n" not in str(e.value)


class FakeRclpy(types.ModuleType):
    """Stands in for rclpy (the real one is exercised in test_clients_ros2.py): records init's arguments."""

    def __init__(self):
        super().__init__("rclpy")
        self.inits = []

    def ok(self):
        return False

    def init(self, **kw):
        kw.pop("signal_handler_options", None)
        self.inits.append(kw)

    def try_shutdown(self):
        pass

    def create_node(self, name):
        return types.SimpleNamespace(create_publisher=lambda *a: None, destroy_node=lambda: None)


def ros_modules(monkeypatch, vision: bool):
    rclpy = FakeRclpy()
    monkeypatch.setitem(sys.modules, "rclpy", rclpy)
    std = types.ModuleType("std_msgs.msg")
    std.String = object
    monkeypatch.setitem(sys.modules, "std_msgs", types.ModuleType("std_msgs"))
    monkeypatch.setitem(sys.modules, "std_msgs.msg", std)
    if vision:
        vm = types.ModuleType("vision_msgs.msg")
        vm.Classification = vm.ObjectHypothesis = object
        monkeypatch.setitem(sys.modules, "vision_msgs", types.ModuleType("vision_msgs"))
        monkeypatch.setitem(sys.modules, "vision_msgs.msg", vm)
    else:
        monkeypatch.setitem(sys.modules, "vision_msgs", None)         # import fails as where it is not installed
        monkeypatch.setitem(sys.modules, "vision_msgs.msg", None)
    return rclpy


def test_rclpy_is_left_to_read_ros_domain_id_unless_a_domain_is_set(monkeypatch):
    rclpy = ros_modules(monkeypatch, vision=True)
    Ros2Sink(Ros2Settings(rclpy="always")).close()
    Ros2Sink(Ros2Settings(rclpy="always", domain=7)).close()
    assert rclpy.inits == [{}, {"domain_id": 7}]


def test_missing_vision_msgs_is_said_clearly(monkeypatch, caplog):
    ros_modules(monkeypatch, vision=False)
    monkeypatch.setenv("ROS_DISTRO", "jazzy")
    with pytest.raises(ConfigError) as e:
        Ros2Sink(Ros2Settings(rclpy="always"))
    assert "vision_msgs does not" in str(e.value) and "ros-jazzy-vision-msgs" in e.value.hint
    with caplog.at_level(logging.WARNING, "avgn_edge.sinks.ros2"):
        sink = Ros2Sink(Ros2Settings(rclpy="auto", scout=False))
    try:
        assert sink._rclpy is None                                    # zenoh instead, and said at WARNING
        assert any("vision_msgs" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    finally:
        sink.close()


def test_scouting_is_a_setting_of_serve_and_live():
    from avgn_edge.cli.args import add_output_arguments, output_sections
    from avgn_edge.serve.config import parse_config
    cfg = parse_config({"ros2": {"scout": False, "domain": 5}, "cameras": {}})
    s = Ros2Settings(**cfg.ros2.model_dump())
    assert s.scout is False and s.domain == 5
    assert json.loads(ros2.zenoh_config(s).get_json("scouting/multicast/enabled")) is False
    assert json.loads(ros2.zenoh_config(Ros2Settings()).get_json("scouting/multicast/enabled")) is True
    import argparse
    p = argparse.ArgumentParser()
    add_output_arguments(p)
    args = p.parse_args(["--ros2", "--ros2-no-scout"])
    assert args.ros2_no_scout is True and output_sections(args)["ros2"]["scout"] is False
