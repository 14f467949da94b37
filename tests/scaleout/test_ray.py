"""avgn-edge run --ray: a local Ray (the test's own, 2 CPUs; one logical GPU for the placement), the
same records as the local run, a corrupt file recorded as failed, a job killed mid-way and resumed,
the event-record hook."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
CLIPS = 24


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def by_path(path: Path) -> dict:
    """path -> the file's records (timings dropped: measurements, not results); paths must be unique."""
    out = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        d.pop("timings_ms", None)
        assert d["path"] not in out, f"{d['path']} recorded twice"
        out[d["path"]] = d
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """CLIPS synthetic MP4 files, a truncated one and one that is not a video; and the local run's records."""
    root = tmp_path_factory.mktemp("archive")
    clips = root / "clips"
    res = cli("synth", "--out", clips, "--clips", CLIPS, "--seed", 77)
    assert res.returncode == 0, res.stderr
    (clips / "truncated.mp4").write_bytes((clips / "clip_00001.mp4").read_bytes()[:3000])
    (clips / "garbage.mp4").write_text("not a video\n")
    res = cli("run", clips, "--json", "--out", root / "local.jsonl", "--backend", "ort")
    assert res.returncode == 1 and "clips/s" in res.stderr, res.stderr[-800:]   # 1: two files failed
    return clips, by_path(root / "local.jsonl")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_ray_equals_local_and_resumes_after_being_killed(archive, tmp_path):
    clips, local = archive
    out = tmp_path / "ray.jsonl"
    cmd = [sys.executable, "-m", "avgn_edge.cli.main", "run", str(clips), "--ray", "--actors", "2", "--batch", "1",
           "--backend", "ort", "--out", str(out)]
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)        # the driver and the local Ray it starts: one session
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and job.poll() is None:
            if out.is_file() and out.read_text().count("\n") >= 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(job.pid, signal.SIGKILL)                 # driver, raylet, workers: killed mid-way
        job.wait(30)
    partial = out.read_text().count("\n")
    assert 2 <= partial < len(local), f"{partial} records when killed (of {len(local)})"

    res = cli("run", clips, "--ray", "--actors", "2", "--backend", "ort", "--out", out, "--resume")
    assert res.returncode == 1, res.stderr[-1500:]         # the two broken files, recorded
    skipped = len(local) - partial
    assert f"{len(local) - skipped} of {len(local)} files are in" in res.stderr or "skipped" in res.stderr
    assert "clips/s (Ray, 2 actor(s)" in res.stderr, res.stderr[-800:]
    assert by_path(out) == local                           # every file once, the same records as the local run
    for name in ("truncated.mp4", "garbage.mp4"):
        assert "cannot decode" in local[str(clips / name)]["error"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_local_ray_in_process_with_the_event_hook(archive):
    import functools

    from avgn_edge.archive.ray_job import classify_with_ray
    from avgn_edge.events import EventSettings, make_tracker
    clips, local = archive
    files = sorted(clips.glob("clip_0000*.mp4"))[:4] + [clips / "garbage.mp4"]
    got = []
    # one logical GPU (Ray schedules by it; the actors then run what they find: ONNX Runtime here)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=256 * 2**20)
    try:
        tracker = functools.partial(make_tracker, EventSettings())       # the real one (it pickles)
        summary = classify_with_ray(files, got.extend, gpus_per_actor=0.5, events=tracker, quiet=True)
    finally:
        ray.shutdown()
    assert summary["files"] == len(files)
    assert summary["actors"] == 2 and summary["resources"] == {"num_gpus": 0.5, "num_cpus": 1.0}   # two per GPU
    records = [r for r in got if "event" not in r]
    events = [r for r in got if "event" in r]
    assert {r["path"] for r in records} == {str(f) for f in files}
    for r in records:
        r.pop("timings_ms", None)
        assert r == local[r["path"]]
    for r in (r for r in records if "error" not in r):
        kinds = [e["event"] for e in events if e["path"] == r["path"]]
        top = r["top"][0]
        assert kinds == (["new", "end"] if top["score"] >= 0.5 and top["label"] != "background" else [])
        assert all(e["label"] == r["top"][0]["label"] for e in events if e["path"] == r["path"])


def test_resume_needs_out_and_skips_what_is_recorded(archive, tmp_path):
    clips, local = archive
    res = cli("run", clips, "--resume")
    assert res.returncode == 2 and res.stderr.startswith("error: --resume needs --out"), res.stderr
    out = tmp_path / "all.jsonl"
    out.write_text("".join(json.dumps({**r, "timings_ms": {}}) + "\n" for r in local.values()) + '{"path": "cut')
    res = cli("run", clips, "--out", out, "--resume", "--json")
    assert res.returncode == 0 and res.stdout == "" and "skipped" in res.stderr, res.stderr[-500:]
    assert out.read_text().endswith("}\n")                 # the line cut short by a kill was dropped


def test_the_base_runtime_imports_neither_ray_nor_tritonclient():
    code = ("import sys; import avgn_edge.cli.main as m; m.build_parser(); "
            "from avgn_edge.runtime.recognizer import Recognizer; Recognizer.load('synth', backend='ort'); "
            "import avgn_edge.archive.records; "
            "print(sorted(k for k in ('ray', 'tritonclient', 'torch') if k in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr[-500:]
