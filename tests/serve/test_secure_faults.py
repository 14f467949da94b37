"""Issue #22, faults: a second instance on a taken port touches nothing (D4); retained label states
survive a broker restart (D5); events end and clips finish when a stream ends or is disabled (D6);
SIGTERM/SIGHUP/SIGINT stop `live` and `serve` cleanly (D7); deleted streams stay deleted on MQTT (D12).
Real mosquitto, real files, real processes and signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
from live_rigs import write_flash_beep_clip  # noqa: E402
from output_rigs import Subscriber, broker  # noqa: F401,E402  (fixture)
from serve_rigs import http, running_service, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EVENTFUL = {"threshold": 0.0, "max_not_heard": 600}     # every label opens at the first decision, none ends by itself


def _cmd(*args):
    return [sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)]


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part")) if root.exists() else []


def _active(url, name):
    return http("GET", url + f"/api/streams/{name}")[1]["active_events"]


@pytest.mark.slow
def test_d4_a_second_instance_on_a_taken_port_touches_nothing(tmp_path, broker):  # noqa: F811
    clips, jsonl = tmp_path / "clips", tmp_path / "ev-{camera}.jsonl"
    mqtt = {"host": "127.0.0.1", "port": broker.port, "topic_prefix": "d4"}
    cfg = {"mqtt": mqtt, "record": {"path": str(clips)}, "jsonl": {"path": str(jsonl)},
           "cameras": {"cam": {"source": "synth://?seed=1"}}}
    with running_service(cfg) as (svc, url):
        sub = Subscriber(broker.port, ["d4/#"])
        try:
            sub.wait("d4/available", "online")
            part = clips / "cam" / "bell" / "1.mp4.part"             # the running instance's open clip
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(b"recording")
            (clips / "cam" / ".avgn-index.jsonl").open("a").write(json.dumps({"f": "bell/1.mp4"}) + "\n")
            size = Path(str(jsonl).replace("{camera}", "cam")).stat().st_size
            second = tmp_path / "second.yaml"
            import yaml
            second.write_text(yaml.safe_dump({**cfg, "api": {"port": svc.api.port}}))
            n = len(sub.messages)
            t = time.monotonic()
            res = subprocess.run(_cmd("serve", second), cwd=ROOT, capture_output=True, text=True, timeout=60)
            took = time.monotonic() - t
            assert res.returncode == 2 and "cannot listen" in res.stderr and "Traceback" not in res.stderr, res.stderr
            time.sleep(1.0)
            assert [m for m in sub.messages[n:] if m[0] == "d4/available"] == []     # no online, no offline
            fresh = Subscriber(broker.port, ["d4/available"])           # what Home Assistant reads now
            try:
                assert fresh.wait("d4/available")[-1] == "online"
            finally:
                fresh.close()
            assert part.read_bytes() == b"recording"
            assert Path(str(jsonl).replace("{camera}", "cam")).stat().st_size >= size
            assert took < 30
        finally:
            sub.close()


@pytest.mark.slow
def test_d5_an_open_event_stays_on_across_a_broker_restart(tmp_path, broker):  # noqa: F811
    cfg = {"detect": EVENTFUL, "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": "d5"},
           "cameras": {"cam": {"source": "synth://?seed=2"}}}
    with running_service(cfg) as (svc, url):
        wait_for(lambda: _active(url, "cam"), 30, what="an open event")
        label = _active(url, "cam")[0]["label"]
        from avgn_edge.sinks.records import safe
        topic = f"d5/cam/{safe(label)}"
        sub = Subscriber(broker.port, [topic])
        sub.wait(topic, "ON")
        sub.close()
        broker.stop()                                  # persistence false: the restarted broker has no retained state
        time.sleep(1.0)
        broker.start()
        wait_for(lambda: svc.shared.workers[-1].sink.connects >= 2, 40, what="the reconnect")
        assert any(e["label"] == label for e in _active(url, "cam"))
        time.sleep(1.0)
        sub = Subscriber(broker.port, [topic])         # a fresh client (Home Assistant after the blip) reads it
        try:
            got = sub.wait(topic)
            assert got[-1] == "ON", sub.on(topic)
        finally:
            sub.close()


@pytest.mark.slow
def test_d6_events_end_and_clips_finish_when_a_file_ends(tmp_path):
    clip = write_flash_beep_clip(tmp_path / "short.mp4", duration=8.0, fps=15)
    clips = tmp_path / "clips"
    cfg = {"detect": EVENTFUL, "record": {"path": str(clips), "pre_capture": 0.5, "post_capture": 0.5},
           "cameras": {"f": {"source": str(clip.path)}}}
    with running_service(cfg) as (svc, url):
        wait_for(lambda: http("GET", url + "/api/streams/f")[1]["status"] == "ended", 60, what="the file to end")
        wait_for(lambda: not _active(url, "f"), 10, what="the events to end")
        wait_for(lambda: not _parts(clips) and list(clips.rglob("*.mp4")), 20, what="finished clips")


def test_d6_disabling_a_stream_ends_its_events_and_finishes_its_clips(tmp_path):
    clips = tmp_path / "clips"
    cfg = {"detect": EVENTFUL, "record": {"path": str(clips), "pre_capture": 0.5, "post_capture": 0.5},
           "cameras": {"cam": {"source": "synth://?seed=3"}}}
    with running_service(cfg) as (svc, url):
        wait_for(lambda: _parts(clips), 30, what="a clip being recorded")
        assert http("PATCH", url + "/api/streams/cam", {"enabled": False})[0] == 200
        wait_for(lambda: not _active(url, "cam"), 10, what="the events to end")
        wait_for(lambda: not _parts(clips) and list(clips.rglob("*.mp4")), 20, what="finished clips")


@pytest.mark.slow
def test_d12_a_deleted_stream_is_not_announced_again(tmp_path, broker):  # noqa: F811
    cfg = {"mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": "d12", "discovery": True},
           "cameras": {"cam": {"source": "synth://?seed=4"}}}
    with running_service(cfg) as (svc, url):
        assert http("POST", url + "/api/streams", {"name": "ghost", "source": "synth://?seed=5"})[0] == 201
        sub = Subscriber(broker.port, ["d12/ghost/#"])
        sub.wait("d12/ghost/detect/state")
        sub.close()
        assert http("DELETE", url + "/api/streams/ghost")[0] == 200
        time.sleep(1.0)
        broker.stop()
        broker.start()
        wait_for(lambda: svc.shared.workers[-1].sink.connects >= 2, 40, what="the reconnect")
        time.sleep(1.5)
        sub = Subscriber(broker.port, ["d12/#", "homeassistant/#"])
        try:
            sub.wait("d12/cam/detect/state")
            time.sleep(0.5)
            ghosts = [t for t, p, _ in sub.messages if "ghost" in t and p]
            assert ghosts == [], ghosts
        finally:
            sub.close()


def _wait_line(proc, prefix, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {prefix!r} line: {proc.stderr.read()[-1500:] if proc.poll() is not None else ''}")


def _signal_during_a_clip(proc, ready: str, sig, clips: Path, events: Path):
    """Once ``proc`` says ``ready`` and a clip is being written, ``sig``: it must exit 0 with every
    clip finished (no .part left) and every onset in ``events`` matched by an offset."""
    try:
        _wait_line(proc, ready)
        wait_for(lambda: _parts(clips), 60, what="a clip being recorded")
        proc.send_signal(sig)
        assert proc.wait(20) == 0, proc.stderr.read()[-1500:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _parts(clips) and list(clips.rglob("*.mp4"))
    kinds = [json.loads(l)["type"] for l in events.read_text().splitlines()]
    assert kinds.count("onset") >= 1 and kinds.count("offset") == kinds.count("onset"), kinds[-5:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_d7_live_stops_cleanly_on_signals(tmp_path, sig):
    clips, events = tmp_path / "clips", tmp_path / "events.jsonl"
    # as a launching script leaves it: SIGINT ignored (a background job)
    proc = subprocess.Popen(_cmd("live", "--source", "synth://?seed=6", "--headless", "--threshold", "0",
                                 "--hold", "600", "--clips", clips, "--events", events, "--web", "0"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    _signal_during_a_clip(proc, "web view on", sig, clips, events)


@pytest.mark.slow
def test_d7_serve_stops_cleanly_on_sighup(tmp_path):
    clips, path = tmp_path / "clips", tmp_path / "serve.yaml"
    path.write_text(f"jsonl: {{path: '{tmp_path}/{{camera}}.jsonl'}}\ndetect: {json.dumps(EVENTFUL)}\n"
                    f"record: {{path: '{clips}'}}\ncameras:\n  a: {{source: 'synth://?seed=7'}}\n")
    proc = subprocess.Popen(_cmd("serve", path, "--port", "0"), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _signal_during_a_clip(proc, "serving on", signal.SIGHUP, clips, tmp_path / "a.jsonl")
