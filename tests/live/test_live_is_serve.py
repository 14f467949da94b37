"""``live`` is serve's pipeline for one camera: its flags become serve's config model, and it runs on
the base install (pydantic; not the ``serve`` extra's aiohttp, prometheus-client, PyYAML)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_flags_become_one_camera_of_a_serve_config(tmp_path):
    from avgn_edge.events import EventSettings
    from avgn_edge.live.loop import one_camera_config
    from avgn_edge.serve.config import ServeConfig
    settings = EventSettings(threshold=0.3, label_thresholds={"bell-checker": 0.7}, offset=0.2, hold=2.0,
                             min_duration=0.5)
    sections = {"web": {"host": "127.0.0.1", "port": 0, "token": None}, "mqtt": None, "ros2": None,
                "record": {"path": str(tmp_path), "pre_capture": 1.0, "post_capture": 2.0, "retain": {"days": 3.0}}}
    cfg = one_camera_config("porch", "synth://", 3, settings, str(tmp_path / "e.jsonl"), sections)
    assert isinstance(cfg, ServeConfig) and list(cfg.cameras) == ["porch"] and cfg.api.port == 0
    cam = cfg.cameras["porch"]
    assert cam.detect.settings() == settings and cam.detect.stride == 3
    assert cam.jsonl.file_for("porch") == tmp_path / "e.jsonl" and cam.jsonl.append is False
    assert cam.record.path == str(tmp_path) and cam.record.post_capture == 2.0 and cam.record.retain.days == 3.0
    assert cfg.mqtt is None and cfg.ros2 is None and cfg.scheduler.max_batch == 1
    off = one_camera_config("porch", "synth://", 2)
    assert off.api.port is None and off.cameras["porch"].jsonl.file_for("porch") is None


def test_live_runs_on_the_base_install_through_serves_stream(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text('{"type": "from an earlier run"}\n')            # --events starts afresh
    code = (
        "import sys, json\n"
        "for m in ('aiohttp', 'prometheus_client', 'yaml', 'torch'):\n    sys.modules[m] = None\n"
        "from avgn_edge.data.synth import SynthSpec\n"
        "from avgn_edge.io.synthstream import SynthStream\n"
        "from avgn_edge.live.loop import LiveLoop\n"
        "from avgn_edge.runtime.recognizer import Recognizer\n"
        "from avgn_edge.serve.camera import Camera\n"
        "rec = Recognizer.load('synth', backend='ort')\n"
        "seen = []\n"
        "with SynthStream(SynthSpec.for_model(rec.config, seed=3)) as v:\n"
        f"    loop = LiveLoop(rec, v, v.audio(16000), duration=3.5, events={str(events)!r}, stats_every=1e9,\n"
        "                    on_result=seen.append)\n"
        "    s = loop.run()\n"
        "st = loop.service.get_stream('default')\n"
        "assert isinstance(st, Camera) and st.status == 'stopped' and loop.service.registry is None\n"
        "rec.encode_many                     # the caller's recognizer is still open: it is the caller's\n"
        "print(json.dumps({'decisions': s['decisions'], 'seen': len(seen), 'stages': sorted(s['stages_ms']),\n"
        "                  'outputs': sorted(s['outputs']), 'audio': s['audio_source']}))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["decisions"] >= 2 and out["seen"] == out["decisions"] and out["stages"]
    assert out["outputs"] == ["jsonl"] and out["audio"] == "source"
    lines = [json.loads(l) for l in events.read_text().splitlines()]
    assert lines and all(l["type"] != "from an earlier run" for l in lines)
    assert sum(l["type"] == "decision" for l in lines) == out["decisions"]
