"""The outputs of both online front ends, built in one place from config sections.

The service (serve/service.py) passes its config's sections (``mqtt:``, ``ros2:``, ``jsonl:``,
``record:``; the web view with the API); ``live`` is that service with one camera, its flags
mapped onto the same model (live/loop.py: one_camera_config). A section that is None is off. Adding an output is one module in sinks/ and one entry below (its section name),
plus the section's model in serve/config.py (and, for live, its flags).

    shared      one worker for every camera: the web view, MQTT, ROS 2
    per camera  one worker each: JSON lines, event clips and snapshots
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..deps import require
from ..errors import AvgnError, ConfigError
from .base import FRAME_QUEUE, Worker

KEYFRAME_MARGIN = 3.0         # s of the record stream kept beyond the pre-roll (its keyframe, a late worker)


@dataclass
class Host:
    """What a front end tells its outputs: the model's facts, its cameras and its callbacks."""
    labels: tuple
    cameras: list
    period: float                             # seconds per snippet
    sample_rate: int
    media_for: Callable                       # camera -> sinks.records.Media or None (no clips)
    on_set: Optional[Callable] = None         # MQTT detect/set: (camera, feature, on) -> new state or None
    state: Optional[Callable] = None          # MQTT: (camera, feature) -> on?
    stats: Optional[Callable] = None          # MQTT <prefix>/stats: () -> dict


def _web(section: dict, host: Host) -> Worker:
    require("aiohttp")
    from .web import WebView
    return Worker(WebView(host.media_for))


def _mqtt(section: dict, host: Host) -> Worker:
    require("paho.mqtt.client")
    from .mqtt import MqttSettings, MqttSink
    return Worker(MqttSink(MqttSettings(**section), host.labels, list(host.cameras), on_set=host.on_set,
                           stats=host.stats, media=host.media_for, state=host.state))


def _ros2(section: dict, host: Host) -> Worker:
    require("zenoh")
    require("rosbags")
    from .ros2 import Ros2Settings, Ros2Sink
    return Worker(Ros2Sink(Ros2Settings(**section), media=host.media_for))


def _jsonl(section: dict, host: Host, camera: str) -> Worker:
    from .jsonl import JsonlSink
    return Worker(JsonlSink(section["path"], decisions=section.get("decisions", True),
                            append=section.get("append", False), media=host.media_for(camera)))


def _record(section: dict, host: Host, camera: str) -> Worker:
    """Clips encoded from the frames, or copied from the camera's record stream (``record_source``)."""
    from .clips import ClipSink
    retain = section.get("retain") or {}
    kw = {k: section[k] for k in ("pre_capture", "post_capture", "max_seconds") if section.get(k) is not None}
    kw.update({f"retain_{k}": retain[k] for k in ("days", "labels") if k in retain})
    kw.update(camera=camera, fps=1.0 / host.period, sample_rate=host.sample_rate)
    if not section.get("record_source"):
        return Worker(ClipSink(host.media_for(camera), **kw), maxsize=FRAME_QUEUE)
    from ..io.recordstream import RecordStream
    from .remuxclips import RemuxClipSink
    sink = RemuxClipSink(host.media_for(camera), None, **kw)          # the folder's lock first
    sink.record = RecordStream(section["record_source"], camera=camera, transport=section.get("rtsp_transport", "tcp"),
                               keep=section.get("pre_capture", 5.0) + KEYFRAME_MARGIN)
    return Worker(sink, maxsize=FRAME_QUEUE)


SHARED = {"web": _web, "mqtt": _mqtt, "ros2": _ros2}
PER_CAMERA = {"jsonl": _jsonl, "record": _record}


def shared_outputs(sections: dict, host: Host) -> dict[str, Worker]:
    """Section name -> its worker, for the shared outputs that ``sections`` switch on."""
    return {name: build(sections[name], host) for name, build in SHARED.items() if sections.get(name) is not None}


def camera_outputs(sections: dict, host: Host, camera: str) -> list[Worker]:
    """The workers of one camera's own outputs that ``sections`` switch on."""
    out = []
    for name, build in PER_CAMERA.items():
        if sections.get(name) is None:
            continue
        try:
            out.append(build(sections[name], host, camera))
        except (OSError, AvgnError) as exc:      # an uncreatable folder, an unwritable file: one line
            for w in out:
                w.close()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"cameras.{camera}.{name}.path: cannot write there ({why})",
                              hint=f"choose a {name}.path the service can create and write") from None
    return out
