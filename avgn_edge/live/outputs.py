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
from ..sinks.base import FRAME_QUEUE, Fanout, Worker
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
    g.add_argument("--ros2-no-scout", action="store_true",
                   help="no zenoh multicast scouting (reach the router only through ENDPOINT)")


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


class LiveOutputs:
    """The sinks of one ``live`` run (and the web view's server); ``detect`` is the MQTT switch."""

    def __init__(self, args, rec, camera: str):
        self.camera, self.detect, self.web_server = camera, True, None
        cfg = rec.config
        self.media = Media(args.clips) if args.clips else None
        media_for = (lambda cam: self.media)
        workers = []
        if self.media is not None:
            from ..sinks.clips import ClipSink
            workers.append(Worker(ClipSink(self.media, fps=1.0 / cfg.snippet_period, sample_rate=cfg.sample_rate,
                                           pre_capture=args.pre_capture, post_capture=args.post_capture,
                                           retain_days=args.retain_days), maxsize=FRAME_QUEUE))
        if args.mqtt is not None:
            from ..deps import require
            require("paho.mqtt.client")
            from ..sinks.mqtt import MqttSettings, MqttSink
            s = MqttSettings.parse_address(args.mqtt, topic_prefix=args.mqtt_prefix, user=args.mqtt_user,
                                           password=os.environ.get(MQTT_PASSWORD_ENV), tls_ca_certs=args.mqtt_tls,
                                           discovery=args.mqtt_discovery)
            workers.append(Worker(MqttSink(s, rec.labels, [camera], on_set=self._switch, media=media_for,
                                           state=lambda cam, feature: self.detect, stats=self.stats)))
        if args.ros2 is not None:
            from ..deps import require
            require("zenoh")
            require("rosbags")
            from ..sinks.ros2 import Ros2Settings, Ros2Sink
            workers.append(Worker(Ros2Sink(Ros2Settings(topic=args.ros2_topic, scout=not args.ros2_no_scout,
                                                        connect=[args.ros2] if args.ros2 else []), media=media_for)))
        if args.web is not None:
            from ..deps import require
            require("aiohttp")
            from ..serve.api import ApiServer
            from ..sinks.web import WebView, web_app
            view = WebView(media_for)
            workers.append(Worker(view))
            self.web_server = ApiServer(lambda: web_app(view, os.environ.get(TOKEN_ENV)), args.web_host, args.web,
                                        setting="--web PORT", alternative="")
        self.sinks = Fanout(workers)
        self.stats_source = None

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
