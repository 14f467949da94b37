"""avgn-edge serve with real parts: the HTTP API through a real client, /metrics through the
Prometheus parser, streams added and removed while running, a camera outage, SIGTERM, bad configs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
from live_rigs import mjpeg_server  # noqa: F401,E402  (fixture)
from serve_rigs import http, metrics, running_service, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-s3cret"


def cli(*args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("config,key", [
    ("api: {port: 1}\ncameras:\n  front: {source: 'synth://', detect: {treshold: 0.3}}\n",
     "cameras.front.detect.treshold: unknown key"),
    ("api: {port: 1}\ncameras:\n  front: {source: 'ftp://user:" + SECRET + "@host/x'}\n", "cameras.front.source"),
    ("api: {port: 1}\ncameras:\n  front: {source: 'synth://'}\n  front: {source: 'synth://?seed=2'}\n",
     "duplicate key 'front'"),
    ("api: {port: 1, host: 0.0.0.0}\ncameras:\n  front: {source: 'synth://'}\n", "api.host"),
    ("api: {port: 1}\nscheduler: {max_batch: 0}\ncameras: {}\n", "scheduler.max_batch"),
    ("api: {port: 1}\ncameras:\n  'bad name': {source: 'synth://'}\n", "camera name"),
    ("cameras: [1, 2]\n", "cameras"),
    ("api: {port: 1}\ncameras:\n  front: {source: 'synth://', detect: {filters: {nope: {threshold: 0.5}}}}\n",
     "cameras.front.detect.filters.nope"),
    ("api: {port: 1}\ndetect: {threshold: 1.5}\ncameras: {}\n", "detect.threshold"),
    ("api: {port: 1}\ncameras:\n  front: {source: 'synth://', detect: {filters: {bell-checker: {threshold: -1}}}}\n",
     "cameras.front.detect.filters.bell-checker.threshold"),
    ("api: {port: 1}\ncameras:\n  front: {source: 'synth://', detect: {max_not_heard: -1}}\n",
     "cameras.front.detect.max_not_heard"),
    ("api: {port: 1}\ndetect: {offset_threshold: 0.8}\ncameras:\n  front: {source: 'synth://'}\n",
     "detect: the offset threshold 0.8 is above the onset threshold 0.5"),
])
def test_a_bad_config_fails_at_start_with_one_line_naming_the_key(tmp_path, config, key):
    path = tmp_path / "serve.yaml"
    path.write_text(config)
    res = cli("serve", path)
    assert res.returncode == 2, res.stderr[-1000:]
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and key in errors[0] and "Traceback" not in res.stderr, res.stderr[-1000:]
    assert SECRET not in res.stderr                       # credentials never printed


def test_the_smallest_config_and_check(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("cameras:\n  front: {source: 'synth://'}\napi: {port: 8080}\n")
    res = cli("serve", path, "--check", "--port", "9090")
    assert res.returncode == 0 and "1 camera" in res.stdout, res.stderr


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve")
    config = {"jsonl": {"path": str(out / "{camera}.jsonl")},
              "cameras": {"yard": {"source": "synth://?seed=3"},
                          "gate": {"source": f"rtsp://admin:{SECRET}@127.0.0.1:9/stream?password={SECRET}"}}}
    with running_service(config) as (svc, url):
        yield svc, url, out


def test_health_streams_and_redaction(service):
    svc, url, _ = service
    assert http("GET", url + "/health/live") == (200, {"status": "alive"})
    status, body = http("GET", url + "/health/ready")
    assert status == 200 and body["status"] == "ready"
    wait_for(lambda: svc.get_stream("yard").stats.decisions >= 2, 20, what="decisions on yard")
    status, body = http("GET", url + "/api/streams")
    streams = {s["name"]: s for s in body["streams"]}
    assert set(streams) == {"yard", "gate"}
    yard, gate = streams["yard"], streams["gate"]
    assert yard["status"] == "online" and yard["audio"] == "source" and yard["counters"]["decisions"] >= 2
    assert yard["last_decision"]["top"][0]["label"] in svc.rec.labels
    assert gate["status"] == "offline" and gate["source"].startswith("rtsp://***@127.0.0.1:9/")
    everything = json.dumps(body) + http("GET", url + "/metrics")[1] + json.dumps(http("GET", url + "/api/events")[1])
    assert SECRET not in everything and "admin" not in everything


def test_metrics_parse_with_the_prometheus_parser(service):
    svc, url, _ = service
    wait_for(lambda: svc.get_stream("yard").stats.decisions >= 3, 20, what="decisions")
    m = metrics(url)
    up = {l["stream"]: v for l, v in m["avgn_stream_up"]}
    assert up == {"yard": 1.0, "gate": 0.0}
    decisions = {l["stream"]: v for l, v in m["avgn_decisions_total"]}
    assert decisions["yard"] >= 3 and decisions["gate"] == 0
    lat = {(l["stream"], l["le"]): v for l, v in m["avgn_decision_latency_seconds_bucket"]}
    assert lat[("yard", "+Inf")] == pytest.approx(decisions["yard"], abs=2)
    assert {l["reason"] for l, _ in m["avgn_dropped_snippets_total"]} == {"mailbox", "deadline", "late"}
    assert any(l["stream"] == "gate" and v >= 1 for l, v in m["avgn_outages_total"])
    info = m["avgn_model_info"][0][0]
    assert info["backend"] == "ort" and info["model"] == svc.rec.config.name and info["precision"] == "fp32"
    assert m["avgn_batch_size_count"] and m["process_resident_memory_bytes"][0][1] > 0


def test_add_patch_and_remove_streams_while_running(service):
    svc, url, out = service
    status, body = http("POST", url + "/api/streams", {"name": "lane", "source": "synth://?seed=9",
                                                      "detect": {"threshold": 0.9}})
    assert status == 201 and body["name"] == "lane" and body["detect"]["threshold"] == 0.9
    wait_for(lambda: svc.get_stream("lane").stats.decisions >= 2, 20, what="decisions on the new stream")
    assert http("POST", url + "/api/streams", {"name": "lane", "source": "synth://"})[0] == 409
    status, body = http("PATCH", url + "/api/streams/lane", {"detect": {"threshold": 0.2, "stride": 3}})
    assert status == 200 and body["detect"]["threshold"] == 0.2 and body["detect"]["stride"] == 3
    assert svc.get_stream("lane").window.stride == 3
    status, body = http("PATCH", url + "/api/streams/lane", {"enabled": False})
    assert status == 200 and body["status"] == "disabled"
    n = svc.get_stream("lane").stats.snippets
    time.sleep(1.0)
    assert svc.get_stream("lane").stats.snippets == n                # capture stopped
    assert http("PATCH", url + "/api/streams/lane", {"enabled": True})[0] == 200
    wait_for(lambda: svc.get_stream("lane").stats.snippets > n, 10, what="capture resumed")
    assert {l["stream"] for l, _ in metrics(url)["avgn_stream_up"]} == {"yard", "gate", "lane"}
    assert http("DELETE", url + "/api/streams/lane") == (200, {"deleted": "lane"})
    assert http("GET", url + "/api/streams/lane")[0] == 404
    assert {l["stream"] for l, _ in metrics(url)["avgn_stream_up"]} == {"yard", "gate"}
    lines = [json.loads(l) for l in (out / "lane.jsonl").read_text().splitlines()]
    assert lines and all(l["camera"] == "lane" for l in lines)       # its output was flushed and closed


@pytest.mark.parametrize("method,path,body,status,text", [
    ("POST", "/api/streams", {"source": "synth://"}, 400, "name"),
    ("POST", "/api/streams", {"name": "x", "source": "ftp://nope"}, 400, "source"),
    ("POST", "/api/streams", {"name": "x", "source": "synth://", "colour": 1}, 400, "colour: unknown key"),
    ("POST", "/api/streams", {"name": "x", "source": "synth://", "detect": {"stride": 0}}, 400, "detect.stride"),
    ("POST", "/api/streams", {"name": "x", "source": "synth://", "detect": {"filters": {"nope": {"threshold": 1}}}},
     400, "not a label"),
    ("POST", "/api/streams", None, 400, "JSON"),
    ("POST", "/api/streams", [1, 2], 400, "object"),
    ("PATCH", "/api/streams/yard", {"source": "synth://"}, 400, "cannot be changed"),
    ("PATCH", "/api/streams/yard", {"detect": {"threshold": 7}}, 400, "detect.threshold"),
    ("PATCH", "/api/streams/nobody", {"enabled": False}, 404, "nobody"),
    ("DELETE", "/api/streams/nobody", None, 404, "nobody"),
    ("GET", "/api/nothing", None, 404, "Not Found"),
    ("PUT", "/api/streams", {"name": "x"}, 405, "Not Allowed"),
])
def test_bad_requests_get_4xx_json(service, method, path, body, status, text):
    _, url, _ = service
    raw = b"{not json" if body is None and method == "POST" else None
    got, payload = http(method, url + path, body, raw=raw)
    assert got == status and isinstance(payload, dict) and text in payload["error"], (got, payload)
    assert http("GET", url + "/health/ready")[0] == 200               # never a crash


def test_token_required_except_health():
    with running_service({"api": {"token": "tok3n"}, "cameras": {"a": {"source": "synth://"}}}) as (_, url):
        assert http("GET", url + "/api/streams")[0] == 401
        assert http("GET", url + "/metrics", token="wrong")[0] == 401
        assert http("GET", url + "/api/streams", token="tok3n")[0] == 200
        assert http("GET", url + "/metrics", token="tok3n")[0] == 200
        assert http("GET", url + "/health/live")[0] == 200 and http("GET", url + "/health/ready")[0] == 200


@pytest.mark.slow
def test_a_camera_outage_and_return_never_stalls_the_others(mjpeg_server):  # noqa: F811
    config = {"cameras": {"cam": {"source": mjpeg_server.url}, "synth": {"source": "synth://?seed=5"}}}
    with running_service(config) as (svc, url):
        cam, synth = svc.get_stream("cam"), svc.get_stream("synth")
        wait_for(lambda: cam.status == "online" and synth.stats.decisions >= 2, 20, what="both online")
        mjpeg_server.stop()
        wait_for(lambda: cam.status == "offline", 10, what="the camera offline")
        before, t0 = synth.stats.snippets, time.monotonic()
        time.sleep(2.0)
        rate = (synth.stats.snippets - before) / (time.monotonic() - t0)
        assert rate >= 3.0, f"the other stream slowed to {rate:.2f} snippets/s during the outage"
        assert http("GET", url + "/api/streams/cam")[1]["status"] == "offline"
        mjpeg_server.start()
        wait_for(lambda: cam.status == "online", 20, what="the camera back online")
        n = cam.stats.decisions
        wait_for(lambda: cam.stats.decisions > n, 15, what="decisions after the return")
        assert cam.outages >= 1 and cam.reconnects >= 1 and synth.stats.dropped == 0


@pytest.mark.slow
def test_sigterm_ends_cleanly_with_outputs_intact(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text(f"jsonl: {{path: '{tmp_path}/{{camera}}.jsonl'}}\ndetect: {{threshold: 0.0}}\n"
                    "cameras:\n  a: {source: 'synth://?seed=1'}\n  b: {source: 'synth://?seed=2'}\n")
    proc = subprocess.Popen([sys.executable, "-m", "avgn_edge.cli.main", "serve", str(path), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), (line, proc.stderr.read()[-1000:] if proc.poll() else "")
        url = line.split()[-1]
        wait_for(lambda: min(http("GET", url + f"/api/streams/{c}")[1]["counters"]["decisions"] for c in "ab") >= 3,
                 30, what="decisions")
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - t < 6.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for cam in ("a", "b"):
        records = [json.loads(l) for l in (tmp_path / f"{cam}.jsonl").read_text().splitlines()]
        kinds = [r["type"] for r in records]
        assert kinds.count("decision") >= 3 and kinds[0] == "decision" and kinds[1] == "onset"
        # threshold 0: every event label opens at the first decision; at SIGTERM every one ends
        onsets = {r["id"] for r in records if r["type"] == "onset"}
        assert len(onsets) == sum(1 for r in records if r["type"] == "onset") >= 12
        assert kinds[-1] == "offset" and {r["id"] for r in records if r["type"] == "offset"} == onsets


def test_stream_memory_is_bounded():
    from avgn_edge.data.stream import KEEP_EVENTS, KEEP_SEGMENTS
    from avgn_edge.io.synthstream import SynthStream
    from avgn_edge.serve.stats import RECENT, LiveStats
    s = LiveStats()
    for i in range(3 * RECENT):
        s.snippet(1.0, True)
        s.decision({"decide": 1.0}, 10.0 + i % 7)
    assert len(s.latency_ms) == len(s.pairing_ms) == len(s.stage_ms["decide"]) == RECENT
    assert s.latency.count == 3 * RECENT and s.decisions == 3 * RECENT
    with SynthStream() as v:
        tl = v.timeline._tl
        v.timeline._extend(5 * KEEP_SEGMENTS)         # as if it had run for ~20 minutes
        assert len(tl.segments) > 5 * KEEP_SEGMENTS and len(list(tl.segments)) == KEEP_SEGMENTS
        assert len(list(tl.events)) <= KEEP_EVENTS
        frame = v._render_frame(5 * KEEP_SEGMENTS * v.per)             # the present still renders
        assert frame.image.shape[2] == 3
        assert v._render_audio(0, 100).shape == (100,)                 # the forgotten past is background


def test_threads_and_servers_are_gone_after_stop():
    before = {t.name for t in threading.enumerate()}
    with running_service({"cameras": {"a": {"source": "synth://"}}}) as (_, url):
        assert http("GET", url + "/health/live")[0] == 200
    time.sleep(0.5)
    left = {t.name for t in threading.enumerate()} - before
    assert not left, left


@pytest.mark.slow
@pytest.mark.gpu
def test_serve_with_the_trt_backend(tmp_path):
    """`serve` on TensorRT (the emulated GPU where there is none): streams batched through the engines,
    each with its own device rings; a removed stream's device memory is freed."""
    import gc
    from avgn_edge import emulator
    from avgn_edge.runtime.backend import trt_available
    ok, why = trt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {why}")
    config = {"model": {"backend": "trt", "precision": "fp16", "engines": str(tmp_path / "engines")},
              "cameras": {name: {"source": f"synth://?seed={seed}", "detect": {"stride": 1}}
                          for name, seed in (("a", 3), ("b", 5), ("c", 7))}}
    with running_service(config) as (svc, url):
        wait_for(lambda: all(svc.get_stream(n).stats.decisions >= 3 for n in "abc"), 120, what="decisions")
        status, body = http("GET", url + "/api/streams")
        assert status == 200 and {s["name"]: s["status"] for s in body["streams"]} == dict.fromkeys("abc", "online")
        assert all(s["last_decision"]["top"][0]["label"] in svc.rec.labels for s in body["streams"])
        info = metrics(url)["avgn_model_info"][0][0]
        assert info["backend"] == "trt" and info["emulated_gpu"] == str(emulator.active()).lower()
        for h in (svc.scheduler.snippet_batches, svc.scheduler.decision_batches):
            assert h.sum > h.count                                   # some calls carried several streams
        pipeline = svc.rec.pipeline
        assert type(pipeline).__name__ == "TrtPipeline" and len(pipeline.pool) == 3
        assert http("DELETE", url + "/api/streams/c") == (200, {"deleted": "c"})
        gc.collect()
        wait_for(lambda: len(pipeline.pool) == 2, 30, what="the removed stream's device rings freed")
        n = svc.get_stream("a").stats.decisions
        wait_for(lambda: svc.get_stream("a").stats.decisions > n, 30, what="decisions after the removal")


def test_stop_waits_for_the_step_in_flight_before_closing_the_model():
    """A backend call slower than stop's timeout: the recognizer is closed only after it returned
    (live's rule, now the service's: live is serve with one camera)."""
    from avgn_edge.serve.config import parse_config
    from avgn_edge.serve.service import Service
    svc = Service(parse_config({"cameras": {"a": {"source": "synth://"}}}))
    svc.load_model()
    rec, real_encode, state = svc.rec, svc.rec.encode_many, {"in": threading.Event(), "done": False}
    real_close, closed_after_done = rec.close, []

    def encode_many(*a, **k):
        if not state["in"].is_set():
            state["in"].set()
            time.sleep(2.0)                       # longer than stop's timeout below
            state["done"] = True
        return real_encode(*a, **k)

    def close():
        closed_after_done.append(state["done"])
        real_close()
    rec.encode_many, rec.close = encode_many, close
    svc.start(api=False)
    assert state["in"].wait(30), "no snippet reached the scheduler"
    svc.stop(timeout=0.5)
    assert closed_after_done == [True]


def test_a_bundles_tuned_event_settings_apply_where_detect_leaves_them_unset(tmp_path):
    """The home bundle carries event settings tuned on a validation stream (onset 0.9, speech 0.95,
    vehicle 0.5): serve uses them where ``detect:`` says nothing, the config's keys win where set, at
    start and after a PATCH; the synth bundle (none tuned) keeps the defaults."""
    from avgn_edge.bundle import load_bundle
    from avgn_edge.serve.config import parse_config, patched_camera, resolve_sections
    tuned = load_bundle("home").event_defaults
    assert tuned["threshold"] == 0.9 and tuned["label_thresholds"]["vehicle"] == 0.5
    cfg = parse_config({"api": {"port": 0}, "detect": {"max_not_heard": 3.0}, "cameras": {
        "a": {"source": "synth://"}, "b": {"source": "synth://", "detect": {"threshold": 0.4,
                                                                           "filters": {"speech": {"threshold": 0.7}}}}}})
    a, b = (resolve_sections(cfg, cfg.cameras[n]) for n in "ab")
    sa, sb = a.detect.settings(tuned), b.detect.settings(tuned)
    assert (sa.threshold, sa.hold, sa.label_thresholds) == (0.9, 3.0, {"speech": 0.95, "vehicle": 0.5})
    assert (sb.threshold, sb.label_thresholds) == (0.4, {"speech": 0.7, "vehicle": 0.5})
    patched = patched_camera(a, {"detect": {"stride": 3}}).detect.settings(tuned)
    assert (patched.threshold, patched.hold) == (0.9, 3.0)          # a PATCH of one key keeps the others tuned
    assert patched_camera(a, {"detect": {"threshold": 0.6}}).detect.settings(tuned).threshold == 0.6
    assert a.detect.settings(load_bundle("synth").event_defaults).threshold == 0.5
