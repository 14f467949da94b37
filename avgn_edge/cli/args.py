"""Argument groups shared by the commands that run a bundle."""

from __future__ import annotations

import ipaddress
import os

from ..errors import ConfigError

MQTT_PASSWORD_ENV, TOKEN_ENV = "AVGN_MQTT_PASSWORD", "AVGN_API_TOKEN"


def add_runtime_arguments(p, default_precision: str = "fp32"):
    g = p.add_argument_group("model and backend")
    g.add_argument("--bundle", default="synth", help="model bundle folder, or 'synth' (the shipped demo model; "
                                                     "default) or 'home' (the shipped real-events model)")
    g.add_argument("--backend", default="auto", choices=["auto", "ort", "trt", "triton"],
                   help="auto: TensorRT when it and a GPU are present, else ONNX Runtime (default auto); "
                        "triton: a Triton Inference Server at --triton-url")
    g.add_argument("--precision", default=default_precision, choices=["fp32", "fp16", "int8"],
                   help=f"bundle variant to run (default {default_precision})")
    g.add_argument("--engines", help="TensorRT engine cache folder (default engines/)")
    g.add_argument("--triton-url", default=os.environ.get("AVGN_TRITON_URL"), metavar="URL",
                   help="with --backend triton: http://HOST:8000 or grpc://HOST:8001 (default $AVGN_TRITON_URL)")
    g.add_argument("--triton-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a Triton call may take (default 10)")
    g.add_argument("--triton-prefix", default="avgn_", metavar="P",
                   help="the repository's model name prefix (export-triton --prefix; default avgn_)")


def backend_options(args) -> dict:
    """The backend's own options from the command line."""
    if args.backend in ("auto", "trt") and getattr(args, "engines", None):
        return {"engines_dir": args.engines}
    if args.backend == "triton":
        return {"url": args.triton_url, "timeout": args.triton_timeout, "prefix": args.triton_prefix}
    return {}


def open_recognizer(args, **kw):
    from ..runtime.recognizer import Recognizer
    return Recognizer.load(args.bundle, backend=args.backend, precision=args.precision, **backend_options(args), **kw)


def add_event_arguments(p):
    """The event tracker's settings (avgn_edge/events), shared by live, demo, run and eval --stream
    (serve's ``detect:`` section has the same ones)."""
    g = p.add_argument_group("events (when decisions make an event; 'background' never does)")
    g.add_argument("--threshold", type=float, help="onset: a label's score that opens an event (default: the "
                   "bundle's tuned one, else 0.5)")
    g.add_argument("--label-threshold", action="append", metavar="LABEL=X",
                   help="a label's own onset threshold, e.g. bell-checker=0.7 (repeat, or comma-separate; "
                   "added to the bundle's tuned ones)")
    g.add_argument("--offset-threshold", type=float, metavar="X",
                   help="an open event is heard while its score stays >= X (default: half its onset threshold)")
    g.add_argument("--hold", "--max-not-heard", dest="hold", type=float, metavar="SECONDS",
                   help="an event ends after this long not heard, like Frigate's max_not_heard (default: the "
                   "bundle's tuned one, else 1.0)")
    g.add_argument("--min-duration", type=float, default=0.0, metavar="SECONDS",
                   help="publish only events heard at least this long (default 0: at the first decision)")


def event_settings(args, labels=None, defaults: dict | None = None):
    """EventSettings from the flags over ``defaults`` (a bundle's ``event_defaults``); checked
    against ``labels`` when given (InputError)."""
    from ..events import EventSettings, parse_label_thresholds
    d = defaults or {}
    pick = lambda flag, key, fallback: flag if flag is not None else d.get(key, fallback)     # noqa: E731
    s = EventSettings(threshold=pick(args.threshold, "threshold", 0.5),
                      label_thresholds={**d.get("label_thresholds", {}), **parse_label_thresholds(args.label_threshold)},
                      offset=pick(args.offset_threshold, "offset", None), hold=pick(args.hold, "hold_s", 1.0),
                      min_duration=args.min_duration)
    return s.check(labels) if labels is not None else s


def add_output_arguments(p):
    """``live``'s outputs (avgn_edge/sinks): each maps onto a section of serve's config (output_sections)."""
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


def output_sections(args) -> dict:
    """The output flags as serve's config sections (sinks/outputs.py builds both front ends' outputs);
    bad flags fail here, before the model loads."""
    for name in ("pre_capture", "post_capture", "retain_days"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
    web = None
    if args.web is not None:
        if not 0 <= args.web <= 65535:
            raise ConfigError(f"--web {args.web}: not a port (0-65535)")
        token = os.environ.get(TOKEN_ENV)
        if not _loopback(args.web_host) and not token:
            raise ConfigError(f"--web-host {args.web_host} is not a loopback address, so a token is required",
                              hint=f"set the {TOKEN_ENV} environment variable (browsers then open /?token=...)")
        web = {"host": args.web_host, "port": args.web, "token": token}
    mqtt = None
    if args.mqtt is not None:
        from ..sinks.mqtt import MqttSettings
        s = MqttSettings.parse_address(args.mqtt)
        mqtt = {"host": s.host, "port": s.port, "topic_prefix": args.mqtt_prefix, "user": args.mqtt_user,
                "password": os.environ.get(MQTT_PASSWORD_ENV), "tls_ca_certs": args.mqtt_tls,
                "discovery": args.mqtt_discovery}
    ros2 = {"topic": args.ros2_topic, "connect": [args.ros2] if args.ros2 else [], "scout": not args.ros2_no_scout}
    record = {"path": args.clips, "pre_capture": args.pre_capture, "post_capture": args.post_capture,
              "retain": {"days": args.retain_days}}
    return {"web": web, "mqtt": mqtt, "ros2": None if args.ros2 is None else ros2,
            "record": record if args.clips else None}


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def quiet_native_logs():
    """OpenCV's and its FFmpeg's own log lines (``[ WARN:0@..] global cap.cpp``, ``[tcp @ 0x..]
    Connection refused``) stay out of the service log: each outage is said once, by us.
    ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL`` set by the user win."""
    import os
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")           # AV_LOG_QUIET
    try:
        import cv2
        cv2.setLogLevel({"SILENT": 0, "FATAL": 1, "ERROR": 2, "WARNING": 3, "INFO": 4}.get(
            os.environ["OPENCV_LOG_LEVEL"].upper(), 2))
    except (ImportError, AttributeError):
        pass
