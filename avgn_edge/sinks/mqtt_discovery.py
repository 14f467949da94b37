"""Home Assistant MQTT discovery: one device per camera with a binary sensor per label, an event
entity (one ``event_type`` per label, fired when an event starts), the audio level sensor (dBFS,
no device class: HA has none for a level relative to full scale; unavailable ``expire_after``
seconds without a level, e.g. while detection is off) and the detection switch. Retained config
messages under ``discovery_prefix``:

    homeassistant/binary_sensor/<node>/<camera>_<label>/config
    homeassistant/event/<node>/<camera>_events/config
    homeassistant/sensor/<node>/<camera>_audio_dbfs/config
    homeassistant/switch/<node>/<camera>_detect/config

Every entity is unavailable while ``<prefix>/available`` reads offline.
"""

from __future__ import annotations

import math

from .. import __version__
from .records import safe


def discovery_messages(s, camera: str, labels) -> list[tuple[str, dict]]:
    p, node = s.topic_prefix.rstrip("/"), safe(s.topic_prefix.strip("/")) or "avgn"
    device = {"identifiers": [f"{node}_{camera}"], "name": f"{camera} ({node})", "manufacturer": "avgn-edge",
              "model": "audio-visual event recognition", "sw_version": __version__}
    common = {"availability_topic": f"{p}/available", "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    out = []
    for label in labels:
        uid = f"{node}_{safe(camera)}_{safe(label)}"
        out.append((f"{s.discovery_prefix}/binary_sensor/{node}/{safe(camera)}_{safe(label)}/config",
                    {"name": label, "unique_id": uid, "object_id": uid, "state_topic": f"{p}/{camera}/{safe(label)}",
                     "payload_on": "ON", "payload_off": "OFF", "device_class": "sound", **common}))
    uid = f"{node}_{safe(camera)}_events"
    out.append((f"{s.discovery_prefix}/event/{node}/{safe(camera)}_events/config",
                {"name": "sound event", "unique_id": uid, "object_id": uid, "state_topic": f"{p}/{camera}/events",
                 "event_types": list(labels), **common}))
    uid = f"{node}_{safe(camera)}_audio_dbfs"
    out.append((f"{s.discovery_prefix}/sensor/{node}/{safe(camera)}_audio_dbfs/config",
                {"name": "audio level", "unique_id": uid, "object_id": uid, "state_topic": f"{p}/{camera}/audio/dBFS",
                 "unit_of_measurement": "dBFS", "state_class": "measurement",
                 "expire_after": max(10, math.ceil(5 * getattr(s, "audio_interval", 1.0))), **common}))
    uid = f"{node}_{safe(camera)}_detect"
    out.append((f"{s.discovery_prefix}/switch/{node}/{safe(camera)}_detect/config",
                {"name": "detection", "unique_id": uid, "object_id": uid, "command_topic": f"{p}/{camera}/detect/set",
                 "state_topic": f"{p}/{camera}/detect/state", "payload_on": "ON", "payload_off": "OFF", **common}))
    return out
