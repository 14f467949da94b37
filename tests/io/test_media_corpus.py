"""The media corpus (scripts/media-corpus: real videos from Debian packages and awkward variants
made by ffmpeg) through every command: each file gives a decision or a one-line reason, as its
manifest entry expects; no traceback, no stalled stream, a bad file costs only its own record.

The corpus is built once into ``AVGN_MEDIA_CORPUS`` (default ~/.cache/avgn-edge/media-corpus);
CI caches that folder. Marked slow: ``-m 'not slow'`` skips it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_rigs import _unavailable

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def corpus() -> dict:
    for tool in ("apt-get", "dpkg-deb", "ffmpeg"):
        if shutil.which(tool) is None:
            _unavailable(f"building the media corpus needs {tool}")
    out = os.environ.get("AVGN_MEDIA_CORPUS", os.path.expanduser("~/.cache/avgn-edge/media-corpus"))
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "media-corpus"), "--out", out], capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    c = json.loads((Path(out) / "corpus.json").read_text())
    assert len(c["files"]) >= 30 and not any("Traceback" in s["why"] for s in c["skipped"])
    return {Path(f["file"]).name: f for f in c["files"]} | {"_dir": Path(c["dir"])}


def files_of(corpus):
    return {k: v for k, v in corpus.items() if not k.startswith("_")}


def judge(corpus, outcomes: dict, what: str, streams: bool = False):
    """``outcomes``: file name -> None (classified) or the one-line reason it was refused.
    ``streams``: played in real time (live, serve), where a file shorter than one window ends
    with a reason instead of a decision."""
    files = files_of(corpus)
    assert set(outcomes) == set(files), (what, sorted(set(files) ^ set(outcomes)))
    wrong = []
    for name, reason in outcomes.items():
        e = files[name]
        if streams and e.get("streams"):
            if streams == "looped":        # played again and again: a decision, or no end at all
                continue
            e = {**e, "expect": "refused", "reason": "ended before a full window"}
        if e["expect"] == "classified" and reason is not None:
            wrong.append(f"{name}: refused ({reason})")
        elif e["expect"] == "refused":
            if reason is None:
                wrong.append(f"{name}: classified, expected refused")
            elif "\n" in reason or not re.search(e["reason"], reason):
                wrong.append(f"{name}: reason {reason!r} does not match {e['reason']!r}")
    assert not wrong, f"{what}:\n" + "\n".join(wrong)


def test_run_local_and_ray(corpus, tmp_path):
    res = cli("run", corpus["_dir"], "--json", "--backend", "ort", "--out", tmp_path / "local.jsonl")
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    records = [json.loads(line) for line in res.stdout.splitlines()]
    judge(corpus, {Path(r["path"]).name: r.get("error") for r in records}, "run")
    assert res.returncode == 1                   # some files are refused: the exit status says so
    pytest.importorskip("ray")
    res = cli("run", corpus["_dir"], "--json", "--backend", "ort", "--ray", "--actors", "2", "--batch", "2")
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    ray = {Path(r["path"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    judge(corpus, {k: r.get("error") for k, r in ray.items()}, "run --ray")
    for r in records:                            # the same decisions as the local run
        other = ray[Path(r["path"]).name]
        assert ("top" in r) == ("top" in other)
        if "top" in r:
            assert r["top"][0]["label"] == other["top"][0]["label"]


@pytest.fixture(scope="module")
def labelled(corpus, tmp_path_factory):
    """The corpus as a class-folder dataset of two of the synth model's labels (links)."""
    root = tmp_path_factory.mktemp("labelled")
    for i, name in enumerate(sorted(files_of(corpus))):
        cls = root / ("background" if i % 2 else "bell-checker")
        cls.mkdir(exist_ok=True)
        (cls / name).symlink_to(corpus["_dir"] / name)
    return root


def refused_count(corpus) -> int:
    return sum(e["expect"] == "refused" for e in files_of(corpus).values())


def test_cache_eval_and_train_on_a_folder_of_it(corpus, labelled, tmp_path):
    pytest.importorskip("torch")
    res = cli("cache", "--data", labelled, "--cache", tmp_path / "cache", "--preset", "tiny", "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["fill"]["clips"] == len(files_of(corpus)) and report["fill"]["undecodable"] == refused_count(corpus)
    skipped = {n for line in res.stderr.splitlines() if "skipping" in line for n in files_of(corpus) if n in line}
    assert skipped == {n for n, e in files_of(corpus).items() if e["expect"] == "refused"}

    res = cli("eval", "--data", labelled, "--no-baselines", "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert json.loads(res.stdout)["clips"] > 0

    res = cli("train", "--preset", "tiny", "--data", labelled, "--out", tmp_path / "run", "--steps", "0.02",
              "--workers", "0", "--cache", tmp_path / "cache")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_serve_every_file_as_a_camera(corpus):
    """The files as looping file-source cameras of a service, six at a time (an NVR's worth; all
    37 at once overload two cores): the good ones decide, the bad ones say why in their status,
    and none stalls the others."""
    pytest.importorskip("aiohttp")
    from serve_rigs import http, running_service
    files = sorted(files_of(corpus))
    seen = {}
    for at in range(0, len(files), 6):
        names = {f"f{i}": n for i, n in enumerate(files[at:at + 6], at)}
        config = {"model": {"bundle": "synth", "backend": "ort"},
                  "cameras": {k: {"source": str(corpus["_dir"] / n), "loop": True, "jsonl": {"enabled": False}}
                              for k, n in names.items()}}
        with running_service(config) as (svc, url):
            end = time.monotonic() + 60
            while time.monotonic() < end and not set(names.values()) <= set(seen):
                _, body = http("GET", url + "/api/streams")
                for s in body["streams"]:
                    n = names[s["name"]]
                    if s["counters"]["decisions"] > 0:
                        seen[n] = None
                    elif s["status"] in ("offline", "ended", "failed") and s["reason"]:
                        seen[n] = s["reason"]
                time.sleep(0.5)
    short = {n for n in files if files_of(corpus)[n].get("streams")}
    missing = sorted(set(files) - set(seen) - short)
    assert not missing, f"no decision and no reason within 60 s: {missing}"
    judge(corpus, {n: seen.get(n) for n in files}, "serve", streams="looped")


def _live(path: Path, tmp: Path):
    """(None or the one-line reason, stderr) of ``avgn-edge live`` on one file for up to 4 s."""
    summary = tmp / (path.name + ".json")
    res = cli("live", "--source", path, "--headless", "--duration", 4, "--backend", "ort", "--summary", summary,
              timeout=120)
    if summary.is_file() and json.loads(summary.read_text())["decisions"] > 0:
        return None, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:") or "ended before" in line]
    return (lines[0] if len(lines) == 1 else f"{len(lines)} reasons: {lines}"), res.stderr


def test_live_on_every_file(corpus, tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    files = files_of(corpus)
    with ThreadPoolExecutor(2) as pool:
        got = dict(zip(files, pool.map(lambda n: _live(corpus["_dir"] / n, tmp_path), files)))
    bad = {n: err[-1500:] for n, (_, err) in got.items() if "Traceback" in err}
    assert not bad, bad
    judge(corpus, {n: r for n, (r, _) in got.items()}, "live", streams=True)


def test_serve_every_file_as_an_rtsp_camera(corpus):
    """Each file as a local RTSP camera (tests/rtsp_camera.py FILE: GStreamer decodes it and
    streams H.264 once, in real time), six cameras to a service at a time: every camera ends in
    a decision or one line of why not (none stalls); the real recordings decide."""
    pytest.importorskip("aiohttp")
    from serve_rigs import SYSTEM_PYTHON, free_port, http, running_service, stop_process
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import Gst; Gst.init(None); "
                            "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('avdec_h264')"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable("RTSP cameras from files need python3-gi, gir1.2-gst-rtsp-server-1.0, "
                    "gstreamer1.0-plugins-ugly and gstreamer1.0-libav for the system python3")
    files = sorted(files_of(corpus))
    seen = {}
    for at in range(0, len(files), 6):
        batch = files[at:at + 6]
        cams = {}
        try:
            for i, n in enumerate(batch, at):
                port = free_port()
                proc = subprocess.Popen([SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_camera.py"), str(port), "10",
                                         str(corpus["_dir"] / n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                cams[f"f{i}"] = (n, port, proc)
                assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-500:]
            config = {"model": {"bundle": "synth", "backend": "ort"},
                      "cameras": {k: {"source": f"rtsp://127.0.0.1:{port}/cam", "jsonl": {"enabled": False}}
                                  for k, (n, port, _) in cams.items()}}
            with running_service(config) as (svc, url):
                end = time.monotonic() + 60
                while time.monotonic() < end and not set(batch) <= set(seen):
                    _, body = http("GET", url + "/api/streams")
                    for s in body["streams"]:
                        n = cams[s["name"]][0]
                        if s["counters"]["decisions"] > 0:
                            seen[n] = None
                        elif s["status"] in ("offline", "failed") and s["reason"]:
                            seen[n] = s["reason"]
                    time.sleep(0.5)
        finally:
            for _, _, proc in cams.values():
                stop_process(proc)
    missing = sorted(set(files) - set(seen))
    assert not missing, f"no decision and no reason within 60 s: {missing}"
    assert not [r for r in seen.values() if r and "\n" in r]
    # a camera has no file to refuse: what it cannot show, it cannot stream ("cannot open");
    # a recording streamed once that is over before connect + one window may end with a reason
    # ("no frames"); the real recordings (8 s or more) give decisions
    import av
    for n, e in files_of(corpus).items():
        if e["expect"] == "refused":
            assert seen[n] and "cannot open" in seen[n], (n, seen[n])
        else:
            with av.open(str(corpus["_dir"] / n)) as c:
                long = (c.duration or 0) / 1e6 >= 8
            assert seen[n] is None or not long, (n, seen[n])
