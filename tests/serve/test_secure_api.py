"""Issue #22 against the real service and a real HTTP client: the API cannot choose paths (D1),
refuses cross-site use (D2), has a stream cap and finite values (D8, D14), and answers every odd
request with one line of JSON, never a 500 (D9, D10, D13)."""

import json
import os
import random
import threading
import time

import pytest

pytest.importorskip("aiohttp")
from secure_rigs import post_json, raw  # noqa: E402
from serve_rigs import http, running_service  # noqa: E402


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    out = tmp_path_factory.mktemp("secure")
    config = {"record": {"path": str(out / "clips")},
              "cameras": {"yard": {"source": "synth://?seed=3"}}}
    with running_service(config) as (service, url):
        yield service, url, out


def _victim(root):
    """A folder of someone's media, old enough for any retention, and a download in progress."""
    pics = root / "victim" / "Pictures" / "2023"
    pics.mkdir(parents=True)
    for name in ("a.jpg", "holiday.mp4"):
        (pics / name).write_bytes(b"precious")
        os.utime(pics / name, (1.6e9, 1.6e9))
    (root / "victim" / "big.iso.part").write_bytes(b"downloading")
    return sorted(p.relative_to(root) for p in (root / "victim").rglob("*"))


@pytest.mark.parametrize("section", [
    {"record": {"path": "VICTIM", "retain": {"days": 0}}},
    {"jsonl": {"path": "VICTIM/planted/{camera}.jsonl"}},
])
def test_d1_the_api_cannot_choose_output_paths(svc, tmp_path, section):
    _, url, _ = svc
    before = _victim(tmp_path)
    body = json.loads(json.dumps({"name": "wiper", "source": "synth://?seed=9", "enabled": False, **section})
                      .replace("VICTIM", str(tmp_path / "victim")))
    status, _, got = post_json(url, "/api/streams", body)
    assert status == 400 and ".path: cannot be set through the API" in got["error"], got
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "victim").rglob("*")) == before   # nothing touched
    assert http("GET", url + "/api/streams/wiper")[0] == 404


def test_d3_adding_a_stream_keeps_the_other_cameras_clips_in_progress(svc):
    _, url, out = svc
    part = out / "clips" / "yard" / "bell" / "42.mp4.part"          # an open clip of a running camera
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"recording")
    try:
        assert http("POST", url + "/api/streams", {"name": "bystander", "source": "synth://?seed=4",
                                                   "enabled": False})[0] == 201
        assert part.read_bytes() == b"recording"
    finally:
        http("DELETE", url + "/api/streams/bystander")
        part.unlink(missing_ok=True)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_d2_bodies_must_be_json(svc, ctype):
    _, url, _ = svc
    status, _, got = post_json(url, "/api/streams", {"name": "csrf", "source": "synth://", "enabled": False}, ctype)
    assert status == 415 and "application/json" in got["error"]
    assert http("GET", url + "/api/streams/csrf")[0] == 404


def test_d2_host_and_origin_are_checked(svc):
    _, url, _ = svc
    port = url.rsplit(":", 1)[1]
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.nip.io:{port}"):
        status, _, got = raw(url, "GET", "/api/streams", headers={"Host": host})
        assert status == 403 and "Host" in got["error"], (host, got)
    assert raw(url, "GET", "/api/streams", headers={"Host": f"localhost:{port}"})[0] == 200
    assert raw(url, "GET", "/health/live", headers={"Host": "probe.internal"})[0] == 200    # probes: any name
    body = {"name": "csrf2", "source": "synth://", "enabled": False}
    for hdr in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                {"Origin": f"http://127.0.0.1:{int(port) + 1}"}):
        status, _, got = post_json(url, "/api/streams", body, **hdr)
        assert status == 403 and "cross-" in got["error"], (hdr, got)
    status, _, _ = post_json(url, "/api/streams", body, Origin=f"http://127.0.0.1:{port}")   # the page's own
    assert status == 201
    assert http("DELETE", url + "/api/streams/csrf2")[0] == 200


def test_d2_security_headers_on_the_page_and_api(svc):
    _, url, _ = svc
    for path in ("/", "/api/streams", "/nope"):
        _, h, _ = raw(url, "GET", path)
        assert "frame-ancestors 'none'" in h["content-security-policy"] and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer" and h["x-content-type-options"] == "nosniff"


def test_d8_the_stream_cap_is_a_clear_409():
    with running_service({"api": {"max_streams": 3}, "cameras": {"one": {"source": "synth://"}}}) as (service, url):
        for i in range(4):
            status, got = http("POST", url + "/api/streams", {"name": f"bulk{i}", "source": "synth://", "enabled": False})
            if status != 201:
                break
        assert (i, status) == (2, 409) and "api.max_streams" in got["error"], got
        assert len(service.stream_list()) == 3
        assert http("DELETE", url + "/api/streams/bulk0")[0] == 200
        assert http("POST", url + "/api/streams", {"name": "again", "source": "synth://", "enabled": False})[0] == 201


@pytest.mark.parametrize("text", ['{"name":"inf","source":"synth://","detect":{"max_not_heard":Infinity}}',
                                  '{"name":"nan","source":"synth://","detect":{"threshold":NaN}}',
                                  '{"name":"big","source":"synth://","detect":{"max_not_heard":1e308}}',
                                  '{"name":"strd","source":"synth://","detect":{"stride":100000000000}}'])
def test_d14_values_are_finite_and_bounded(svc, text):
    _, url, _ = svc
    status, _, got = raw(url, "POST", "/api/streams", text.encode(), {"Content-Type": "application/json"})
    assert status == 400 and "error" in got, got
    status, _, got = raw(url, "PATCH", "/api/streams/yard", b'{"detect":{"max_not_heard":1e308}}',
                         {"Content-Type": "application/json"})
    assert status == 400
    _, _, text_out = raw(url, "GET", "/api/streams")
    assert isinstance(text_out, dict)                          # standard JSON (a strict parser read it)


@pytest.mark.parametrize("headers,body,status", [
    ({"Content-Type": "application/json; charset=nonexistent"}, b'{"name":"x"}', 400),
    ({"Content-Type": "application/json"}, b"[" * 20000 + b"]" * 20000, 400),
    ({"Content-Type": "application/json"}, b'{"a":' * 5000 + b"1" + b"}" * 5000, 400),
])
def test_d10_odd_requests_get_one_line_4xx(svc, headers, body, status, caplog):
    _, url, _ = svc
    got_status, _, got = raw(url, "POST", "/api/streams", body, headers)
    assert got_status == status and isinstance(got, dict) and "\n" not in got["error"], got
    assert "Traceback" not in caplog.text and "API handler failed" not in caplog.text


def test_d10_a_non_utf8_authorization_is_401_not_500():
    with running_service({"api": {"token": "a-strong-token-0123456789"}, "cameras": {}}) as (_, url):
        status, h, got = raw(url, "GET", "/api/streams", headers={"Authorization": b"Bearer \xff\xfe"})
        assert status == 401 and got["error"] == "missing or wrong API token"


def test_d9_concurrent_changes_of_one_name_never_500(svc):
    _, url, _ = svc
    statuses, lock = [], threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        for _ in range(40):
            method, path, body = rng.choice([
                ("POST", "/api/streams", {"name": "race", "source": "synth://?seed=5", "enabled": rng.random() < 0.5}),
                ("PATCH", "/api/streams/race", {"enabled": rng.random() < 0.5}), ("DELETE", "/api/streams/race", None)])
            status = http(method, url + path, body)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    http("DELETE", url + "/api/streams/race")
    assert len(statuses) == 160 and set(statuses) <= {200, 201, 404, 409}, sorted(set(statuses))


@pytest.mark.slow
def test_d10_the_web_state_never_races(svc):
    service, url, _ = svc
    view = service.web.sink

    class Tr:
        def __init__(self, i):
            self.type, self.label = ("new", "end")[i % 2], f"l{i % 7}"
            self.event = {"id": f"e{i}", "camera": "yard", "label": self.label, "score": 0.9, "top_score": 0.9,
                          "start_time": time.monotonic(), "end_time": None, "evidence": []}
            self.before = None

    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            view.event("yard", Tr(i))
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        codes = [http("GET", url + "/web/yard/state")[0] for _ in range(300)]
    finally:
        stop.set()
        t.join(10)
    assert set(codes) == {200}


def test_d13_redaction_and_no_path_oracle(svc):
    _, url, _ = svc
    status, got = http("POST", url + "/api/streams", {"name": "pw", "source": "rtsp://admin:hun/ter2@127.0.0.1:2/live",
                                                      "enabled": False})
    assert status == 201 and "ter2" not in json.dumps(got) and "***@127.0.0.1:2" in got["source"]
    http("DELETE", url + "/api/streams/pw")
    answers = {http("POST", url + "/api/streams", {"name": "probe", "source": p})[1]["error"]
               for p in ("/etc/passwd-nope-xyz", "/root", "/etc")}
    assert len(answers) == 1, answers
