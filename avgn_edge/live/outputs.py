"""``live``'s outputs from its flags: MQTT, event clips, the web view, ROS 2 (JSON lines: --events).

    --mqtt HOST[:PORT]        Frigate's topics under --mqtt-prefix (default avgn); --mqtt-user, the
                              password from AVGN_MQTT_PASSWORD; --mqtt-discovery for Home Assistant
    --clips DIR               an MP4 (with sound) and a JPEG per event: --pre-capture / --post-capture s
    --web PORT                the web view on http://--web-host:PORT/ (a token is needed off loopback:
                              AVGN_API_TOKEN, as for serve)
    --ros2 [ENDPOINT]         vision_msgs/Classification on --ros2-topic (zenoh; ENDPOINT: the robot's
                              router, e.g. tcp/robot:7447)
"""

from __future__ import annotations

import ipaddress
import os

from ..errors import ConfigError
from ..sinks.base import Fanout
from ..sinks.records import Media

MQTT_PASSWORD_ENV, TOKEN_ENV = "AVGN_MQTT_PASSWORD", "AVGN_API_TOKEN"


def add_arguments(p):
    g = p.add_argument_group("outputs (avgn_edge/sinks)")
    g.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish to an MQTT broker (Frigate's topics)")
    g.add_argument("--mqtt-prefix", default="avgn", help="MQTT topic prefix (default avgn)")
    g.add_argument("--mqtt-user", help=f"MQTT user name (the password from {MQTT_PASSWORD_ENV})")
    g.add_argument("--mqtt-tls", metavar="CA.pem", help="MQTT over TLS, trusting this CA file")
    g.add_argument("--mqtt-discovery", action="store_true", help="Home Assistant MQTT discovery (retained)")
    g.add_argument("--clips", metavar="DIR", help="an MP4 with sound and a JPEG snapshot per event")
    g.add_argument("--pre-capture", type=float, default=5.0, metavar="S", help="clip seconds before an event (5)")
    g.add_argument("--post-capture", type=float, default=5.0, metavar="S", help="clip seconds after an event (5)")
    g.add_argument("--retain-days", type=float, default=10.0, help="delete clips older than this (default 10)")
    g.add_argument("--web", type=int, metavar="PORT", help="the live web view on this port (0: any free one)")
    g.add_argument("--web-host", default="127.0.0.1", help="the web view's address (default 127.0.0.1)")
    g.add_argument("--ros2", nargs="?", const="", metavar="ENDPOINT",
                   help="publish ROS 2 topics over zenoh (optionally to a router, e.g. tcp/robot:7447)")
    g.add_argument("--ros2-topic", default="/avgn/classification", help="ROS 2 topic (default /avgn/classification)")


def check(args):
    """Bad output flags fail before the model loads."""
    for name in ("pre_capture", "post_capture", "retain_days"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
    if args.web is not None:
        if not 0 <= args.web <= 65535:
            raise ConfigError(f"--web {args.web}: not a port (0-65535)")
        if not _loopback(args.web_host) and not os.environ.get(TOKEN_ENV):
            raise ConfigError(f"--web-host {args.web_host} is not a loopback address, so a token is required",
                              hint=f"set the {TOKEN_ENV} environment variable (browsers then open /?token=...)")
    if args.mqtt is not None:
        from ..sinks.mqtt import MqttSettings
        MqttSettings.parse_address(args.mqtt)


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sections(args) -> dict:
    """The flags as serve's config sections (sinks/outputs.py builds both)."""
    mqtt = None
    if args.mqtt is not None:
        from ..sinks.mqtt import MqttSettings
        s = MqttSettings.parse_address(args.mqtt)
        mqtt = {"host": s.host, "port": s.port, "topic_prefix": args.mqtt_prefix, "user": args.mqtt_user,
                "password": os.environ.get(MQTT_PASSWORD_ENV), "tls_ca_certs": args.mqtt_tls,
                "discovery": args.mqtt_discovery}
    ros2 = {"topic": args.ros2_topic, "connect": [args.ros2] if args.ros2 else []}
    record = {"pre_capture": args.pre_capture, "post_capture": args.post_capture, "retain": {"days": args.retain_days}}
    return {"web": None if args.web is None else {}, "mqtt": mqtt, "ros2": None if args.ros2 is None else ros2,
            "record": record if args.clips else None}


class LiveOutputs:
    """The outputs of one ``live`` run (and the web view's server); ``detect`` is the MQTT switch."""

    def __init__(self, args, rec, camera: str):
        from ..sinks.outputs import Host, camera_outputs, shared_outputs
        self.camera, self.detect, self.web_server, self.stats_source = camera, True, None, None
        self.media = Media(args.clips) if args.clips else None
        cfg, wanted = rec.config, sections(args)
        host = Host(rec.labels, [camera], cfg.snippet_period, cfg.sample_rate, lambda cam: self.media,
                    on_set=self._switch, state=lambda cam, feature: self.detect, stats=self.stats)
        shared = shared_outputs(wanted, host)
        self.sinks = Fanout(camera_outputs(wanted, host, camera) + list(shared.values()))
        if "web" in shared:
            from ..sinks.httphost import ApiServer
            from ..sinks.web import web_app
            view = shared["web"].sink
            self.web_server = ApiServer(lambda: web_app(view, os.environ.get(TOKEN_ENV)), args.web_host, args.web,
                                        setting="--web PORT", alternative="")

    def start(self):
        if self.web_server is not None:
            self.web_server.start()
            print(f"web view on http://{self.web_server.host}:{self.web_server.port}/", flush=True)

    def _switch(self, camera: str, feature: str, on: bool):
        if camera != self.camera:
            return None
        self.detect = on
        return on

    def stats(self) -> dict:
        s = self.stats_source.summary() if self.stats_source is not None else {}
        return {"cameras": {self.camera: {k: v for k, v in s.items() if not isinstance(v, dict)}}}

    def close(self):
        self.sinks.close()
        if self.web_server is not None:
            self.web_server.stop()
