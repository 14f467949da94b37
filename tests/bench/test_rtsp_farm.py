"""The RTSP camera farm and the many-cameras benchmark with real decoding (bench/camera_farm.py,
rtsp_farm_server.py, threadcpu.py, rtsp_streams.py)."""

import threading
import time

import numpy as np
import pytest

from avgn_edge.bench import camera_farm, report, rtsp_streams, threadcpu
from avgn_edge.io.threadname import name_os_thread


@pytest.fixture()
def farm_ok():
    why = camera_farm.farm_unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture()
def short_clip(tmp_path):
    """A 2 s farm recording (the farm's own settings, shorter), so a test sees the loop soon."""
    return camera_farm.farm_clip(tmp_path, seconds=2)


def read_with_pyav(url: str, seconds: float, out: dict):
    """Decode picture and sound with PyAV (FFmpeg), not our reader: (frame pts, shape), audio samples."""
    import av
    out.update(video=[], shapes=set(), samples=0)
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=5) as c:
        end = time.monotonic() + seconds
        for packet in c.demux():
            for frame in packet.decode():
                if packet.stream.type == "video":
                    out["video"].append(frame.time)
                    out["shapes"].add(frame.to_ndarray(format="rgb24").shape)
                else:
                    out["samples"] += frame.samples
            if time.monotonic() > end:
                break


def test_two_mounts_stream_picture_and_sound_through_the_loop(farm_ok, short_clip):
    """Both mounts at once, past the 2 s recording's end: 640x360 pictures, AAC sound, and time stamps
    that go on without a hole (a mount's replay once shifted the other mount's packets: 2 s gaps)."""
    with camera_farm.CameraFarm(2, short_clip) as farm:
        reads = [{}, {}]
        threads = [threading.Thread(target=read_with_pyav, args=(u, 4.5, r)) for u, r in zip(farm.urls, reads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert farm.cpu_seconds() >= 0 and farm.proc.poll() is None
    for r in reads:
        pts = np.array([t for t in r["video"] if t is not None])
        assert r["shapes"] == {(360, 640, 3)} and r["samples"] > 16000      # > 1 s of sound
        assert pts[-1] - pts[0] > 2.5                                       # played past the recording's end
        assert np.all(np.diff(pts) > 0) and np.max(np.diff(pts)) < 0.5     # one frame per picture, no hole


def test_farm_clip_is_encoded_once(tmp_path):
    first = camera_farm.farm_clip(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert camera_farm.farm_clip(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.name == "farm_640x360_10fps_8s_crf28.mp4"


def _spin(name, seconds, spun, release):
    name_os_thread(name)
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    spun.release()
    release.wait(10)            # alive while measured: an ended thread's time leaves /proc/self/task


def test_cpu_split_by_thread_role_sums_to_the_process():
    spun, release = threading.Semaphore(0), threading.Event()
    before, own = threadcpu.thread_cpu(), threadcpu.process_cpu()
    threads = [threading.Thread(target=_spin, args=(*a, spun, release)) for a in
               (("demux rtsp://x", 0.4), ("avgn-scheduler", 0.25), ("stream s000", 0.15))]
    for t in threads:
        t.start()
    for _ in threads:
        assert spun.acquire(timeout=30)
    spent, total = threadcpu.split_by_role(before, threadcpu.thread_cpu()), threadcpu.process_cpu() - own
    release.set()
    for t in threads:
        t.join()
    assert spent["decode"] == pytest.approx(0.4, abs=0.05)
    assert spent["inference"] == pytest.approx(0.25, abs=0.05)
    assert spent["other"] >= 0.15 - 0.05
    assert sum(spent.values()) == pytest.approx(total, abs=0.05)
    assert threadcpu.role_of("avgn-ort") == "inference" and threadcpu.role_of("python") == "other"


def test_a_small_search_over_rtsp_cameras(farm_ok, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    r = rtsp_streams.max_realtime_cameras("synth", 2.0, start=2, limit=2, bisect=False)
    assert r["max_realtime_cameras"] in (0, 2) and [x["streams"] for x in r["runs"]] == [2]
    run = r["runs"][0]
    assert run["source"] == "rtsp" and run["min_snippets_per_s"] > 0
    cpu = r["cpu_ms_per_camera_s"]
    assert cpu["decode"] > 0 and cpu["inference"] > 0      # the demux and scheduler threads carry their names
    assert 2 * sum(cpu.values()) == pytest.approx(r["process_cpu_ms_s"], rel=0.35, abs=15)
    assert r["server_cpu_ms_s"] >= 0
    assert "| cameras | real time |" in "\n".join(report._rtsp(r))


def test_without_the_farm_the_search_says_why_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(camera_farm, "SYSTEM_PYTHON", "/nonexistent/python3")
    with caplog.at_level("WARNING"):
        r = rtsp_streams.max_realtime_cameras("synth", 1.0)
    assert set(r) == {"skipped"} and "system python3" in r["skipped"] and "\n" not in r["skipped"]
    assert [m for m in caplog.messages if "no RTSP camera benchmark" in m]
    assert report._rtsp(r) == ["### RTSP cameras with real decoding (local camera farm, PyAV software decode)",
                               "", f"Not measured: {r['skipped']}.", ""]


def test_name_os_thread_sets_the_kernel_name():
    seen = []

    def body():
        name_os_thread("avgn-test-name-that-is-long")
        seen.append(open("/proc/thread-self/comm").read().strip())
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == ["avgn-test-name-"]            # Linux keeps 15 bytes
