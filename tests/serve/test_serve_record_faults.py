"""A camera that restarts with other codec parameters (another resolution, another sound codec) while
an event is open: the stream comes back and keeps deciding, its sound (now AAC instead of G.711) is
resampled again and heard, and the record stream's clip ends at the restart while the next part
(``<id>-2.mp4``) carries the new parameters: no clip mixes two (ffprobe and PyAV read them)."""

import json
import subprocess

import pytest

pytest.importorskip("aiohttp")
av = pytest.importorskip("av")
from camera_rigs import camera  # noqa: E402
from serve_rigs import http, running_service, wait_for  # noqa: E402
from test_serve_record import LABEL, QUIET  # noqa: E402


def sizes(path) -> set:
    """Every decoded picture's size, and the sound codec (PyAV decodes the whole clip)."""
    with av.open(str(path)) as c:
        return {(f.width, f.height) for f in c.decode(video=0)}


def sound(path) -> str | None:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], capture_output=True,
                         text=True, check=True, timeout=30)
    return next((s["codec_name"] for s in json.loads(out.stdout)["streams"] if s["codec_type"] == "audio"), None)


@pytest.mark.slow
def test_a_camera_back_with_other_codec_parameters_keeps_deciding_and_starts_a_new_clip(tmp_path):
    with camera("--audio", "pcmu", "--size", "320x240", "--hi", "960x540") as cam:
        hi = cam.url.replace("/cam", "/hi")
        cfg = {"detect": QUIET, "record": {"path": str(tmp_path / "clips"), "pre_capture": 1.0, "post_capture": 1.0,
                                           "snapshots": False},
               "cameras": {"door": {"inputs": [{"path": cam.url, "roles": ["detect"]},
                                               {"path": hi, "roles": ["record"]}]}}}
        with running_service(cfg) as (svc, url):
            st = svc.get_stream("door")
            wait_for(lambda: st.stats.decisions >= 2, 60, what="decisions")
            assert st.audio_info()["kind"] == "camera:pcm_mulaw"
            http("PATCH", f"{url}/api/streams/door", {"detect": {"filters": {LABEL: {"threshold": 0.0}}}})
            ev = wait_for(lambda: next((e for e in st.tracker.active if e.label == LABEL), None), 30, what="the event")
            clips = st.sinks.workers[0].sink
            wait_for(lambda: ev.id in clips.open, 10, what="its clip")
            cam.cut()                                           # the camera restarts with other parameters
            cam.args = ["--audio", "aac", "--size", "480x360", "--hi", "640x360"]
            cam.restore()
            before = st.stats.decisions
            wait_for(lambda: st.stats.decisions >= before + 6, 90, what="decisions after the restart")
            wait_for(lambda: st.audio_info()["kind"] == "camera:aac", 30, what="the new sound codec")
            heard = st.audio_info()
            wait_for(lambda: getattr(clips.open.get(ev.id, [None])[0], "part", 1) == 2, 30, what="the second part")
            http("PATCH", f"{url}/api/streams/door", {"detect": {"filters": {LABEL: {"threshold": 1.0}}}})
            folder = tmp_path / "clips" / "door" / LABEL
            wait_for(lambda: (folder / f"{ev.id}-2.mp4").exists(), 30, what="the second clip")
            counters = st.sinks.workers[0].counters()
    first, second = folder / f"{ev.id}.mp4", folder / f"{ev.id}-2.mp4"
    assert sizes(first) == {(960, 540)} and sound(first) == "aac"          # G.711 re-encoded as AAC
    assert sizes(second) == {(640, 360)} and sound(second) == "aac"        # AAC copied
    assert counters["clips_copied"] == 2 and counters["clips_encoded"] == 0
    assert heard["codec"] == "aac" and heard["level_db"] > -40, heard     # the new sound, resampled, is heard
