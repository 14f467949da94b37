"""Issue #22, configs: one line (never a traceback) for files that are not UTF-8, paths that cannot be
created, a missing CA, weak tokens off loopback, values without bounds (D11, D14), with `--check`
refusing what start would refuse; a config record path over someone's media deletes none of it (D1);
OpenCV/FFmpeg lines stay out of the log (D15)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
from serve_rigs import free_port, http, running_service, wait_for  # noqa: E402

from avgn_edge.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=90, env=None):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def one_line(res, key):
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1 and key in errors[0], res.stderr[-1500:]
    assert "Traceback" not in res.stderr, res.stderr[-1500:]


CAM = "cameras:\n  c: {source: 'synth://'}\n"


@pytest.mark.parametrize("text,key", [
    (b"api: {port: 1}\n# caf\xe9 \xff\n" + CAM.encode(), "not UTF-8"),
    ("api: {port: 1}\nrecord: {path: /proc/nope}\n" + CAM, "record.path"),
    ("api: {port: 1}\nmqtt: {host: 127.0.0.1, tls_ca_certs: /nonexistent/ca.pem}\n" + CAM, "mqtt.tls_ca_certs"),
    ("api: {port: 1, host: 0.0.0.0, token: '   '}\n" + CAM, "api.token is too weak"),
    ("api: {port: 1, host: 0.0.0.0, token: 'abc'}\n" + CAM, "api.token is too weak"),
    ("api: {port: 1}\nscheduler: {max_batch: 1e20}\n" + CAM, "scheduler.max_batch"),
    ("api: {port: 1}\ndetect: {max_not_heard: .inf}\n" + CAM, "detect.max_not_heard"),
    ("api: {port: 1}\ndetect: {max_not_heard: .nan}\n" + CAM, "detect.max_not_heard"),
    ("api: {port: 1}\ncameras:\n  c: {source: 'synth://', detect: {filters: {nope: {threshold: 0.5}}}}\n",
     "cameras.c.detect.filters.nope"),
    ("api: {port: 1}\ndetect: {offset_threshold: 0.8}\n" + CAM, "offset threshold"),
    ("api: {port: 1}\nmodel: {bundle: /nonexistent/bundle}\n" + CAM, "model.bundle"),
    ("api: {port: 1}\njsonl: {path: '/proc/nope/{camera}.jsonl'}\n" + CAM, "jsonl.path"),
    (CAM, "api.port"),
])
@pytest.mark.parametrize("check", [True, pytest.param(False, marks=pytest.mark.slow)])   # start: also test_serve's
def test_d11_bad_configs_fail_in_one_line_at_check_and_at_start(tmp_path, text, key, check):
    path = tmp_path / "serve.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    one_line(cli("serve", path, *(["--check"] if check else [])), key)


def test_a_strong_token_opens_a_non_loopback_bind_check(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("api: {port: 1, host: 0.0.0.0, token: 'Zq3-8sKp_v2Lm9xRt4Wc'}\n" + CAM)
    res = cli("serve", path, "--check")
    assert res.returncode == 0, res.stderr


def test_d1_a_config_record_path_over_someones_media_deletes_none_of_it(tmp_path):
    media = tmp_path / "media"
    old = media / "cam" / "2019" / "holiday.mp4"               # <root>/<camera>/<x>/<y>.mp4: the old pattern
    other = media / "someone" / "bell" / "x.jpg"
    part = media / "cam" / "bell" / "download.mp4.part"
    for f in (old, other, part):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"precious")
        os.utime(f, (1.5e9, 1.5e9))
    cfg = {"record": {"path": str(media), "retain": {"days": 0}}, "cameras": {"cam": {"source": "synth://?seed=1"}}}
    with running_service(cfg):
        pass
    assert all(f.read_bytes() == b"precious" for f in (old, other, part))


@pytest.mark.slow
def test_d15_opencv_and_ffmpeg_lines_stay_out_of_the_log(tmp_path):
    path = tmp_path / "serve.yaml"
    dead = free_port()
    path.write_text(f"api: {{port: 0}}\ncameras:\n  gone: {{source: 'rtsp://127.0.0.1:{dead}/x'}}\n"
                    f"  gone2: {{source: 'http://127.0.0.1:{dead}/x.mjpg'}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "avgn_edge.cli.main", "serve", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split()[-1]
        wait_for(lambda: http("GET", url + "/api/streams/gone")[1]["reopens"] >= 2
                 if "reopens" in http("GET", url + "/api/streams/gone")[1] else
                 http("GET", url + "/api/streams/gone")[1]["status"] == "offline", 30, what="retries")
        import time
        time.sleep(3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    noise = [l for l in err.splitlines() if l.startswith("[") and ("@" in l or "WARN" in l or "ERROR" in l)]
    assert noise == [], noise[:5]


def test_d1_a_second_instance_on_the_same_record_path_is_refused(tmp_path):
    cfg = {"record": {"path": str(tmp_path / "clips")}, "cameras": {"cam": {"source": "synth://?seed=1"}}}
    from avgn_edge.serve.config import parse_config
    from avgn_edge.serve.service import Service
    with running_service(cfg):
        second = Service(parse_config({**cfg, "api": {"port": 0}}))
        try:
            with pytest.raises(ConfigError, match="in use by another running instance"):
                second.start()
        finally:
            second.stop()
    with running_service(cfg):                     # the first one stopped: its lock went with it
        pass
