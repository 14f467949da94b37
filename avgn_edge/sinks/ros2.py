"""ROS 2 topics without a ROS installation: rmw_zenoh's wire layout over eclipse-zenoh, CDR from rosbags.

    <topic>          vision_msgs/msg/Classification per decision: header (stamp = the newest
                     snippet's time, frame_id = the camera), results = [{class_id: label, score}]
    <topic>/events   std_msgs/msg/String per event transition: the JSON of records.message()

A ROS 2 (Jazzy or later) machine hears them with ``RMW_IMPLEMENTATION=rmw_zenoh_cpp`` and a
zenoh router (``ros2 run rmw_zenoh_cpp rmw_zenohd``) that this publisher reaches: ``ros2:
{connect: [tcp/ROBOT:7447]}`` (or ``live --ros2 tcp/ROBOT:7447``). What goes on the wire is
what rmw_zenoh_cpp's publishers send: the data key ``<domain>/<topic>/<dds type>/RIHS01_<hash>``,
CDR (little endian) payloads, the attachment of current rmw_zenoh (Jazzy >= 0.2.4, Kilted,
Humble >= 0.1.2: zenoh-serialized i64 sequence number, i64 source timestamp, 16-byte gid, one gid
per publisher, no keys) and a liveliness token under ``@ros2_lv`` so that ``ros2 topic list``
shows the topic. Where rclpy and vision_msgs import (a sourced ROS 2 workspace with
``ros-<distro>-vision-msgs``) ``Ros2Sink`` publishes through rclpy instead, on any RMW.
The domain: ``domain``, else ``$ROS_DOMAIN_ID``, else 0 (as rcl does).

Verified: the CDR by rclpy's own deserializer and the attachment by zenoh.ext's deserializer,
the rclpy path by a real rclpy node (tests/test_clients_ros2.py, PyPI's Jazzy wheels). Not
verified here: a real rmw_zenoh_cpp subscriber (no wheel of it exists).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field

from .base import Sink
from .records import message

log = logging.getLogger("avgn_edge.sinks.ros2")

MSGS = {
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/Classification": "std_msgs/Header header\nvision_msgs/ObjectHypothesis[] results\n",
}
CLASSIFICATION, STRING = "vision_msgs/msg/Classification", "std_msgs/msg/String"


@dataclass
class Ros2Settings:
    topic: str = "/avgn/classification"
    domain: int | None = None                             # None: $ROS_DOMAIN_ID, else 0 (rcl's rule)
    connect: list[str] = field(default_factory=list)   # zenoh endpoints, e.g. tcp/192.168.1.5:7447
    listen: list[str] = field(default_factory=list)
    node: str = "avgn_edge"
    rclpy: str = "auto"                                   # auto: rclpy when importable; never; always
    scout: bool = True                                    # zenoh's multicast scouting (finds a router on the LAN)


def typestore():
    """A rosbags type store with ROS 2 Jazzy's messages plus vision_msgs' two we publish."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    ts = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for name, text in MSGS.items():
        types.update(get_types_from_msg(text, name))
    ts.register(types)
    return ts


def dds_type(name: str) -> str:
    """``vision_msgs/msg/Classification`` -> ``vision_msgs::msg::dds_::Classification_`` (rmw_zenoh's key part)."""
    pkg, kind, msg = name.split("/")
    return f"{pkg}::{kind}::dds_::{msg}_"


def ros_domain(domain: int | None) -> int:
    """The domain rcl would use: the setting, else ``$ROS_DOMAIN_ID``, else 0."""
    if domain is not None:
        return domain
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return 0
    if not text.isdigit() or int(text) > 232:
        from ..errors import ConfigError
        raise ConfigError(f"ROS_DOMAIN_ID={text!r}: expected a number 0..232")
    return int(text)


def data_key(domain: int, topic: str, typename: str, type_hash: str) -> str:
    return f"{domain}/{topic.strip('/')}/{dds_type(typename)}/{type_hash}"


def classification(ts, result, camera: str):
    C, O = ts.types[CLASSIFICATION], ts.types["vision_msgs/msg/ObjectHypothesis"]
    H, T = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    from ..events.tracker import wall_time
    t = wall_time(result.t)
    sec = int(t)
    return C(header=H(stamp=T(sec=sec, nanosec=int((t - sec) * 1e9)), frame_id=camera),
             results=[O(class_id=label, score=float(s)) for label, s in result.top(len(result.labels))])


def zenoh_config(s: Ros2Settings):
    """A peer; multicast scouting only where ``scout`` (it finds a router on the LAN by itself)."""
    import zenoh
    conf = zenoh.Config()
    conf.insert_json5("mode", json.dumps("peer"))
    conf.insert_json5("scouting/multicast/enabled", json.dumps(bool(s.scout)))
    if s.connect:
        conf.insert_json5("connect/endpoints", json.dumps(s.connect))
    if s.listen:
        conf.insert_json5("listen/endpoints", json.dumps(s.listen))
    return conf


class ZenohPublisher:
    """One rmw_zenoh-compatible publisher: key, CDR payload, attachment, liveliness token."""

    def __init__(self, session, ts, s: Ros2Settings, topic: str, typename: str, zid: str, entity: int):
        import zenoh.ext as ze
        self.ze, self.ts, self.typename = ze, ts, typename
        self.hash = ts.hash_rihs01(typename)
        domain = ros_domain(s.domain)
        self.key = data_key(domain, topic, typename, self.hash)
        self.pub = session.declare_publisher(self.key)
        self.seq = 0
        self.gid = os.urandom(16)                          # each publisher its own (rmw_zenoh: a hash per entity)
        mangled = topic.replace("/", "%")
        qos = "::,10:,:,:,,"                               # reliable, volatile, keep last 10 (defaults)
        token = f"@ros2_lv/{domain}/{zid}/0/{entity}/MP/%/%/{s.node}/{mangled}/{dds_type(typename)}/{self.hash}/{qos}"
        try:
            self.token = session.liveliness().declare_token(token)
        except Exception as exc:                           # the graph entry is a nicety; data flows without it
            self.token = None
            log.debug("ros2: no liveliness token (%s)", exc)

    def put(self, msg):
        self.seq += 1
        ze = self.ze
        # rmw_zenoh_cpp >= 0.2.4's AttachmentData: i64, i64, then the gid as a sequence (LEB128 16 + bytes)
        attachment = ze.z_serialize((ze.Int64(self.seq), ze.Int64(time.time_ns()), self.gid))
        self.pub.put(bytes(self.ts.serialize_cdr(msg, self.typename)), attachment=attachment)

    def close(self):
        if self.token is not None:
            self.token.undeclare()
        self.pub.undeclare()


class Ros2Sink(Sink):
    name = "ros2"

    def __init__(self, settings: Ros2Settings, media=None):
        self.s, self.media = settings, media
        self.ts = typestore()
        self.sent = 0
        self._rclpy = None
        if settings.rclpy != "never":
            self._rclpy = _rclpy_or_why(settings)
        if self._rclpy is None:
            import zenoh
            ros_domain(settings.domain)                  # a bad $ROS_DOMAIN_ID: one line, before zenoh opens
            self.session = zenoh.open(zenoh_config(settings))
            zid = str(self.session.info.zid())
            self.decisions = ZenohPublisher(self.session, self.ts, settings, settings.topic, CLASSIFICATION, zid, 10)
            self.events = ZenohPublisher(self.session, self.ts, settings, settings.topic.rstrip("/") + "/events",
                                         STRING, zid, 11)

    def decision(self, camera, result):
        msg = classification(self.ts, result, camera)
        if self._rclpy is not None:
            self._rclpy.classification(msg, result)
        else:
            self.decisions.put(msg)
        self.sent += 1

    def event(self, camera, tr):
        media = self.media(camera) if callable(self.media) else self.media
        text = json.dumps(message(tr, media))
        if self._rclpy is not None:
            self._rclpy.string(text)
        else:
            self.events.put(self.ts.types[STRING](data=text))
        self.sent += 1

    def counters(self) -> dict[str, int]:
        return {"ros2_messages": self.sent}

    def close(self):
        if self._rclpy is not None:
            self._rclpy.close()
            return
        self.decisions.close()
        self.events.close()
        self.session.close()


def _rclpy_or_why(s: Ros2Settings):
    """rclpy's publishers, or None (auto: said, and zenoh instead); ``always`` without them: one line."""
    from ..errors import ConfigError
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        if s.rclpy == "always":
            raise ConfigError(f"ros2.rclpy: always, but rclpy does not import ({exc})",
                              hint="source your ROS 2 workspace (setup.bash) first") from None
        log.debug("ros2: no rclpy (%s); publishing over zenoh", exc)
        return None
    try:
        import vision_msgs.msg  # noqa: F401
    except ImportError as exc:
        distro = os.environ.get("ROS_DISTRO") or "<distro>"
        hint = f"apt install ros-{distro}-vision-msgs (then source setup.bash again)"
        if s.rclpy == "always":
            raise ConfigError(f"ros2.rclpy: always: rclpy imports but vision_msgs does not ({exc})", hint=hint) from None
        log.warning("ros2: rclpy imports but vision_msgs does not: publishing over zenoh instead, which only "
                    "rmw_zenoh hears (%s)", hint)
        return None
    return _RclpyPublishers(s)


class _RclpyPublishers:
    """The same two topics through rclpy (a ROS 2 installation: any RMW, ROS's own vision_msgs)."""

    def __init__(self, s: Ros2Settings):
        import rclpy
        from std_msgs.msg import String
        from vision_msgs.msg import Classification
        self.rclpy = rclpy
        self.own = not rclpy.ok()
        if self.own:
            kw = {} if s.domain is None else {"domain_id": s.domain}            # None: rcl reads ROS_DOMAIN_ID
            try:   # rclpy's own SIGINT/SIGTERM handler would invalidate the context before the last events go out
                from rclpy.signals import SignalHandlerOptions
                kw["signal_handler_options"] = SignalHandlerOptions.NO
            except ImportError:
                pass
            rclpy.init(**kw)
        self.node = rclpy.create_node(s.node)
        self.pub = self.node.create_publisher(Classification, s.topic, 10)
        self.events = self.node.create_publisher(String, s.topic.rstrip("/") + "/events", 10)
        self.String, self.Classification = String, Classification

    def classification(self, msg, _result):
        from vision_msgs.msg import ObjectHypothesis
        out = self.Classification()
        out.header.stamp.sec, out.header.stamp.nanosec = msg.header.stamp.sec, msg.header.stamp.nanosec
        out.header.frame_id = msg.header.frame_id
        out.results = [ObjectHypothesis(class_id=r.class_id, score=r.score) for r in msg.results]
        self.pub.publish(out)

    def string(self, text: str):
        self.events.publish(self.String(data=text))

    def close(self):
        self.node.destroy_node()
        if self.own:
            self.rclpy.try_shutdown()
