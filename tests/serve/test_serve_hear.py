"""serve and live with cameras that hear: real RTSP cameras on 127.0.0.1 whose sound is the snippets'
audio by default (/api/streams, /metrics say which audio each stream has and its gaps); a camera
without sound runs on its picture; ``audio: {source: none}`` and bad ``hwaccel`` values; ``live`` on
a camera with sound on a box with no microphone; an event carried only by the camera's sound."""

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiohttp")
from camera_rigs import camera, ffmpeg  # noqa: E402
from serve_rigs import http, metrics, running_service, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def blank_with_sound(path: Path, kind: str | None, seconds: int = 40, amp: float = 0.6) -> Path:
    """A black 640x480 picture with synth's ``kind`` sound (bell, buzz, chirp, hum) all along, or none."""
    from avgn_edge.data.synth_render import sound
    args = ["-f", "lavfi", "-i", f"color=black:s=640x480:r=10:d={seconds}"]
    if kind is not None:
        rate, n = 16000, 16000 // 4
        wave_ = np.concatenate([amp * sound(kind, n, rate, np.random.default_rng(i)) for i in range(seconds * 4)])
        wav = path.with_suffix(".wav")
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
            w.writeframes((np.clip(wave_, -1, 1) * 32767).astype("<i2").tobytes())
        args += ["-i", str(wav), "-c:a", "pcm_s16le"]
    ffmpeg(*args, "-c:v", "mjpeg", "-q:v", "5", path)
    return path


@pytest.mark.slow
def test_serve_hears_its_cameras_and_says_which_audio_each_has(tmp_path):
    with camera("--audio", "pcmu") as talk, camera() as mute, camera("--audio", "opus") as off:
        cams = {"talk": {"source": talk.url}, "mute": {"source": mute.url},
                "off": {"source": off.url, "audio": {"source": "none"}, "rtsp_transport": "udp"},
                "auto": {"source": talk.url, "hwaccel": "auto"}}
        with running_service({"cameras": cams}) as (svc, url):
            streams = [svc.get_stream(n) for n in cams]
            wait_for(lambda: all(s.status == "online" and s.stats.decisions >= 2 for s in streams), 60,
                     what="all cameras online and deciding")
            info = {s["name"]: s for s in http("GET", url + "/api/streams")[1]["streams"]}
            m = metrics(url)
            web = {n: http("GET", f"{url}/web/{n}/state")[1] for n in ("talk", "mute")}
    assert web["talk"]["audio_source"]["kind"] == "camera:pcm_mulaw" and web["talk"]["audio"]["dBFS"] > -30
    assert web["mute"]["audio_source"]["kind"] == "none" and web["mute"]["audio"] is None
    assert info["talk"]["audio"] == "camera:pcm_mulaw" and info["auto"]["audio"] == "camera:pcm_mulaw"
    assert info["talk"]["audio_detail"]["codec"] == "pcm_mulaw" and info["talk"]["audio_detail"]["gaps"] == 0
    assert info["mute"]["audio"] == "none" and "no audio track" in info["mute"]["audio_detail"]["note"]
    assert info["off"]["audio"] == "none" and "none in the config" in info["off"]["audio_detail"]["note"]
    kinds = {labels["stream"]: labels["kind"] for labels, v in m["avgn_stream_audio"] if v == 1}
    assert kinds == {"talk": "camera:pcm_mulaw", "auto": "camera:pcm_mulaw", "mute": "none", "off": "none"}
    assert {labels["stream"] for labels, _ in m["avgn_audio_gaps_total"]} == set(cams)


def test_unknown_hwaccel_is_one_line_naming_the_camera(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("api: {port: 1}\ncameras:\n  porch: {source: 'rtsp://127.0.0.1:9/x', hwaccel: cuda}\n")
    res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "serve", str(path)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1 and "cameras.porch.hwaccel" in errors[0], res.stderr[-1000:]
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_live_on_a_camera_with_sound_needs_no_microphone(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE")}     # no sound server: no microphone
    with camera("--audio", "aac") as cam:
        res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "live", "--camera", cam.url, "--headless",
                              "--duration", "6", "--backend", "ort", "--summary", str(tmp_path / "s.json")],
                             capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["audio_source"] == "camera:aac" and s["audio"]["codec"] == "aac" and s["decisions"] >= 2
    assert s["audio"]["gaps"] == 0 and s["audio_gaps"] <= 2, s      # the first window may precede the sound


@pytest.mark.slow
def test_an_event_carried_only_by_the_cameras_sound(tmp_path):
    """Synth's labels are family (heard) + pattern (seen): a blank picture with a bell sounding raises the
    bell labels' scores far above the same blank picture in silence, and an event whose threshold sits
    between the two is recognised only where the camera's sound carries it."""
    loud, quiet = blank_with_sound(tmp_path / "bell.mkv", "bell"), blank_with_sound(tmp_path / "quiet.mkv", None)
    with camera(str(loud), "--audio", "aac") as a, camera(str(quiet)) as b:
        detect = {"threshold": 0.9, "offset_threshold": 0.05, "filters": {"bell-vstripes": {"threshold": 0.08}}}
        cams = {"bell": {"source": a.url}, "quiet": {"source": b.url}}
        with running_service({"cameras": cams, "detect": detect}) as (svc, url):
            bell, quiet_ = svc.get_stream("bell"), svc.get_stream("quiet")
            wait_for(lambda: bell.tracker.published >= 1, 60, what="the bell heard as an event")
            wait_for(lambda: quiet_.stats.decisions >= 8, 30, what="the quiet camera's decisions")
            heard = json.dumps(list(bell.recent_events))
            assert quiet_.tracker.published == 0 and "bell-vstripes" in heard, (heard, quiet_.recent_events)
            assert bell.audio_kind == "camera:aac" and quiet_.audio_kind == "none"
