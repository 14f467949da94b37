"""The live path end to end with real parts: an MJPEG camera on localhost, a PulseAudio
virtual microphone, the snippet clock, the inference thread and the sinks."""

import json
import time

import numpy as np
import pytest

from live_rigs import mjpeg_server, virtual_mic  # noqa: F401  (fixtures)

from avgn_edge.live.loop import LiveLoop


@pytest.fixture(scope="module")
def rec():
    from avgn_edge.runtime.recognizer import Recognizer
    return Recognizer.load("synth", backend="ort")


def _onset(wave, t_end, rate, thr=0.1):
    hot = np.nonzero(np.abs(wave) > thr)[0]
    return None if len(hot) == 0 else t_end - (len(wave) - hot[0]) / rate


@pytest.mark.slow
def test_flash_and_beep_pair_through_the_live_loop(virtual_mic, mjpeg_server, rec):  # noqa: F811
    """Flashes on the camera and beeps on the microphone at the same instants; in the
    snippets the clock makes, each flash's beep starts within 50 ms of the flash."""
    from avgn_edge.io import Microphone, open_video
    flashes, flash_len, rate = (0.6, 1.6, 2.6, 3.6), 0.4, 48000
    on = lambda t: any(f <= t < f + flash_len for f in flashes)              # noqa: E731
    dark, white = np.full((240, 320, 3), 40, np.uint8), np.full((240, 320, 3), 255, np.uint8)
    t = np.arange(int(4.4 * rate)) / rate
    beep = (0.5 * np.sin(2 * np.pi * 1000 * t) * np.array([on(x) for x in t])).astype(np.float32)
    snippets = []
    with Microphone(rate=16000) as mic, open_video(mjpeg_server.url) as cam:
        player = virtual_mic.player(beep, rate)
        T0 = time.monotonic() + 0.5
        mjpeg_server.show(lambda x: white.copy() if on(x) else dark.copy(), T0)
        player.start(at=T0)
        loop = LiveLoop(rec, cam, mic, duration=5.0, on_snippet=snippets.append)
        summary = loop.run()
        player.wait()
    assert summary["snippets"] >= 15 and summary["dropped"] == 0
    errors = []
    for f in flashes:
        first = [s for s in snippets if s.frame.mean() > 200 and T0 + f - 0.05 <= s.t <= T0 + f + flash_len]
        assert first, f"no snippet caught the flash at {f} s"
        s = first[0]
        t_beep = _onset(s.audio, s.t, 16000)
        assert t_beep is not None, "the flash snippet's audio has no beep"
        errors.append(t_beep - (T0 + f))
    assert np.all(np.abs(errors) <= 0.05), [f"{e * 1e3:+.1f} ms" for e in errors]


class SlowBackend:
    """A real backend made slow: what an overloaded device looks like to the loop."""

    def __init__(self, inner, delay):
        self.inner, self.delay, self.name, self.precision = inner, delay, "slow", inner.precision

    def run(self, stage, feeds):
        if stage == "head":
            time.sleep(self.delay)
        return self.inner.run(stage, feeds)

    def close(self):
        self.inner.close()


def test_inference_falling_behind_drops_snippets_instead_of_queueing(rec):
    from avgn_edge.data.synth import SynthSpec
    from avgn_edge.io.synthstream import SynthStream
    from avgn_edge.runtime.pipeline import HostPipeline
    from avgn_edge.runtime.recognizer import Recognizer
    slow = SlowBackend(rec.backend, 0.6)
    slow_rec = Recognizer(rec.bundle, slow, HostPipeline(rec.bundle, slow), stride=1)
    with SynthStream(SynthSpec.for_model(rec.config)) as video:
        loop = LiveLoop(slow_rec, video, video.audio(16000), duration=6.0)
        s = loop.run()
    assert s["dropped"] > 3                                      # snippets were discarded ...
    assert s["latency_p95_ms"] < 1500                            # ... so latency stays bounded
    assert s["snippets"] + s["dropped"] >= 20                    # the clock kept ticking at 4 Hz


@pytest.mark.slow
def test_camera_loss_is_survived(mjpeg_server, rec):  # noqa: F811
    from avgn_edge.io import open_video
    results = []
    with open_video(mjpeg_server.url) as cam:
        loop = LiveLoop(rec, cam, None, duration=9.0, on_result=results.append)
        import threading

        def outage():
            time.sleep(3.0)
            mjpeg_server.stop()
            time.sleep(1.5)
            mjpeg_server.start()
        threading.Thread(target=outage, daemon=True).start()
        t_start = time.monotonic()
        summary = loop.run()
    assert summary["source"]["reconnects"] >= 1
    late = [r for r in results if r.t > t_start + 6.5]
    assert late, "no decisions after the camera came back"
    assert summary["stale_ticks"] > 0


@pytest.mark.slow
def test_live_command_headless_with_camera_and_default_microphone(mjpeg_server, virtual_mic, tmp_path):  # noqa: F811
    import os
    import subprocess
    import sys
    env = {**os.environ, **virtual_mic.env}
    # an MJPEG camera carries no sound: live runs on its picture alone unless --mic names a microphone
    res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "live", "--camera", mjpeg_server.url,
                          "--mic", "default", "--headless", "--duration", "5", "--backend", "ort", "--events", str(tmp_path / "e.jsonl"),
                          "--save", str(tmp_path / "a.mp4"), "--summary", str(tmp_path / "s.json")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((tmp_path / "s.json").read_text())
    assert 3.5 <= s["snippets_per_s"] <= 4.2 and s["decisions"] >= 4
    assert s["audio"]["device"] and (tmp_path / "a.mp4").stat().st_size > 1000
    assert s["audio_source"].startswith("mic:")
    kinds = {json.loads(l)["type"] for l in (tmp_path / "e.jsonl").read_text().splitlines()}
    assert "decision" in kinds


@pytest.mark.slow
def test_the_live_session_tracks_events_into_the_events_file(rec, tmp_path):
    """synth:// through the live loop, the event tracker and the JSON-lines sink: every onset
    has its offset (the stream's end closes what is open), transitions come in order."""
    from avgn_edge.data.synth import SynthSpec
    from avgn_edge.events import EventSettings
    from avgn_edge.io.synthstream import SynthStream
    from avgn_edge.live.session import run_session
    transitions = []
    with SynthStream(SynthSpec.for_model(rec.config, seed=3), quiet=0.5) as video:
        summary, _ = run_session(rec, video, video.audio(16000), display=False, save=None,
                                 events=str(tmp_path / "e.jsonl"), duration=8.0, camera="porch",
                                 settings=EventSettings(threshold=0.5, hold=0.5), on_event=transitions.append)
        truth = video.ground_truth()
    assert len(truth) >= 4
    lines = [json.loads(l) for l in (tmp_path / "e.jsonl").read_text().splitlines()]
    onsets = [l for l in lines if l["type"] == "onset"]
    offsets = {l["id"]: l for l in lines if l["type"] == "offset"}
    assert onsets and summary["onsets"] == len(onsets) and set(offsets) == {o["id"] for o in onsets}
    for o in onsets:
        assert {"label", "t", "score", "id", "camera", "evidence"} <= set(o) and o["camera"] == "porch"
        off = offsets[o["id"]]
        assert {"label", "t", "onset", "duration", "peak"} <= set(off) and off["onset"] == o["t"] <= off["t"]
        assert off["peak"] >= o["score"] >= 0.5 and len(o["evidence"]) == rec.config.top_k
    by_id = {}
    for tr in transitions:
        by_id.setdefault(tr.event["id"], []).append(tr.type)
    assert all(ts[0] == "new" and ts[-1] == "end" and set(ts[1:-1]) <= {"update"} for ts in by_id.values())
