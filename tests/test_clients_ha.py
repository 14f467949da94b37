"""A real Home Assistant core (client venv, headless, 127.0.0.1) with its MQTT integration set up
through HA's config flow, a real mosquitto, and the real service with discovery: asserted through
HA's REST API (entities, device classes, units, states; an event on and off; detection switched
off from HA during an event; a stream deleted)."""

import re
import shutil
import time

import pytest

from client_rigs import HA_VERSION, HomeAssistant, client_venv, elapsed
from live_rigs import _unavailable
from output_rigs import Mosquitto, Subscriber
from serve_rigs import http, running_service, wait_for

pytestmark = [pytest.mark.clients, pytest.mark.slow]


def slug(label: str) -> str:
    """HA's entity id form of a label (homeassistant.util.slugify, for the names used here)."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


@pytest.fixture(scope="module")
def ha_rig(tmp_path_factory):
    venv = client_venv(f"ha-{HA_VERSION}")
    if shutil.which("mosquitto") is None:
        _unavailable("the Home Assistant test needs Debian's mosquitto: apt-get install mosquitto")
    pytest.importorskip("paho.mqtt.client")
    work = tmp_path_factory.mktemp("ha")
    broker = Mosquitto(work).start()
    ha = HomeAssistant(venv, work / "config")
    t0 = time.monotonic()
    try:
        ha.start()
        ha.setup_mqtt(broker.port)
        print(f"Home Assistant {HA_VERSION} up with MQTT in {elapsed(t0)}")
        yield ha, broker
    except Exception:
        print(ha.tail())
        raise
    finally:
        ha.stop()
        broker.stop()


def test_home_assistant_follows_serve(ha_rig, tmp_path):
    ha, broker = ha_rig
    sub = Subscriber(broker.port, ("avgn/#",))
    config = {"detect": {"threshold": 0.2},
              "mqtt": {"host": "127.0.0.1", "port": broker.port, "discovery": True, "stats_interval": 0},
              "jsonl": {"enabled": False},
              "cameras": {"front": {"source": "synth://?seed=3"},
                          # a long hold: an event there stays open until detection is switched off
                          "back": {"source": "synth://?seed=7", "detect": {"threshold": 0.2, "max_not_heard": 120}}}}
    try:
        with running_service(config) as (svc, url):
            labels = [l for l in svc.rec.labels if l != "background"]
            # -- the entities HA made from the discovery, with their classes and units
            for cam in ("front", "back"):
                wait_for(lambda: len([e for e, s in ha.states(f"avgn_{cam}_").items()          # all there, online
                                      if s["state"] != "unavailable" or e.startswith("sensor.")]) == len(labels) + 3,
                         60, 0.5, f"HA's entities for {cam}")
                ents = ha.states(f"avgn_{cam}_")
                for label in labels:
                    s = ents[f"binary_sensor.avgn_{cam}_{slug(label)}"]
                    assert s["attributes"]["device_class"] == "sound" and s["state"] in ("off", "on")
                ev = ents[f"event.avgn_{cam}_events"]
                assert ev["attributes"]["event_types"] == labels
                level = wait_for(lambda: ha.state(f"sensor.avgn_{cam}_audio_dbfs")["state"] not in
                                 ("unknown", "unavailable") and ha.state(f"sensor.avgn_{cam}_audio_dbfs"), 30, 0.5,
                                 f"{cam}'s audio level")
                assert level["attributes"]["unit_of_measurement"] == "dBFS"
                assert "device_class" not in level["attributes"] and float(level["state"]) <= 0.0
                assert ents[f"switch.avgn_{cam}_detect"]["state"] == "on"
            rejected = [l for l in ha.tail(10**6).splitlines() if "mqtt" in l and (" ERROR " in l or " WARNING " in l)]
            assert not rejected, rejected[:5]                                 # HA took every discovery payload
            # -- an event on front: its binary sensor goes on, the event entity fires, then off
            new = wait_for(lambda: [e["after"] for e in sub.json("avgn/events")
                                    if e["type"] == "new" and e["after"]["camera"] == "front"], 90, what="an event")[0]
            sensor = f"binary_sensor.avgn_front_{slug(new['label'])}"
            ends = lambda: [e for e in sub.json("avgn/events") if e["type"] == "end" and e["after"]["id"] == new["id"]]
            if not ends():
                ha.wait_state(sensor, "on", 15)
            fired = wait_for(lambda: ha.state("event.avgn_front_events")["attributes"].get("event_type")
                             and ha.state("event.avgn_front_events"), 15, 0.2, "the event entity to fire")
            assert fired["attributes"]["event_type"] in labels and fired["state"] not in ("unknown", "unavailable")
            wait_for(ends, 90, what="the event's end")
            ha.wait_state(sensor, "off", 15)
            # -- back: an event open, detection switched off from HA: the sensor goes off, not stuck on
            open_ = wait_for(lambda: [e["after"] for e in sub.json("avgn/events")
                                      if e["type"] == "new" and e["after"]["camera"] == "back"], 90,
                             what="an event on back")[0]
            back_sensor = f"binary_sensor.avgn_back_{slug(open_['label'])}"
            ha.wait_state(back_sensor, "on", 15)
            status, _ = ha.api("POST", "/api/services/switch/turn_off", {"entity_id": "switch.avgn_back_detect"})
            assert status == 200
            ha.wait_state("switch.avgn_back_detect", "off", 15)
            ha.wait_state(back_sensor, "off", 15)
            assert svc.get_stream("back").info()["status"] == "disabled"
            # -- back deleted: its entities leave HA (empty discovery) or read unavailable
            assert http("DELETE", f"{url}/api/streams/back")[0] in (200, 204)
            wait_for(lambda: all(s is None or s["state"] == "unavailable" for s in
                                 (ha.state(back_sensor), ha.state("switch.avgn_back_detect"),
                                  ha.state("event.avgn_back_events"))), 30, 0.5, "back's entities to go")
            assert ha.state("switch.avgn_front_detect")["state"] == "on"       # front untouched
        # serve stopped: the last message (offline) makes front's entities unavailable
        ha.wait_state("switch.avgn_front_detect", "unavailable", 15)
    finally:
        sub.close()
