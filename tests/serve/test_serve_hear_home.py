"""An event carried only by the camera's sound, through serve with the shipped ``home`` bundle at its
tuned event settings (no `detect:` given): a camera whose picture is black and whose sound is real vehicle recordings from
the real set's test split (never trained on) raises ``vehicle`` events; the same black picture in
silence raises none. Needs the real set (AVGN_REALSET, default /work/cache/realav/v2; not in the repo).

Measured limits per class (docs/benchmarks.md, "Cameras that hear"): vehicle and speech are
recognised this way, the others are not reliably (alarm not at all since the late-fusion retrain)."""

import os
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
from camera_rigs import camera, ffmpeg  # noqa: E402
from serve_rigs import running_service, wait_for  # noqa: E402

REALSET = Path(os.environ.get("AVGN_REALSET", "/work/cache/realav/v2"))


def black_with_real_sound(path: Path, label: str | None, clips: int = 10) -> Path:
    """A black 640x480 picture (10 fps) with the sound of the test split's first ``clips`` clips of
    ``label`` one after another (4 s each), or silent (no sound track)."""
    args = ["-f", "lavfi", "-i", f"color=black:s=640x480:r=10:d={4 * clips}"]
    if label is not None:
        files = sorted((REALSET / "test" / label).glob("*.mp4"))[:clips]
        if len(files) < clips:
            pytest.skip(f"the real set's test split is not at {REALSET} (set AVGN_REALSET)")
        for f in files:
            args += ["-i", str(f)]
        joined = "".join(f"[{i + 1}:a]" for i in range(clips)) + f"concat=n={clips}:v=0:a=1[a]"
        args += ["-filter_complex", joined, "-map", "0:v", "-map", "[a]", "-c:a", "pcm_s16le"]
    ffmpeg(*args, "-c:v", "mjpeg", "-q:v", "5", path)
    return path


@pytest.mark.slow
def test_home_bundle_recognises_a_real_vehicle_heard_on_a_black_picture(tmp_path, label="vehicle"):
    loud, quiet = black_with_real_sound(tmp_path / "heard.mkv", label), black_with_real_sound(tmp_path / "q.mkv", None)
    with camera(str(loud), "--audio", "aac") as a, camera(str(quiet)) as b:
        cfg = {"model": {"bundle": "home"}, "cameras": {"heard": {"source": a.url}, "quiet": {"source": b.url}}}
        with running_service(cfg) as (svc, url):
            heard, silent = svc.get_stream("heard"), svc.get_stream("quiet")
            wait_for(lambda: any(e["after"]["label"] == label for e in heard.recent_events), 45,
                     what=f"the {label} heard as an event")
            wait_for(lambda: silent.stats.decisions >= 20, 30, what="the silent camera's decisions")
            assert not svc.cfg.detect.model_fields_set          # the bundle's tuned settings (onset 0.9, vehicle 0.5)
            assert heard.tracker.settings.to_dict().items() >= {"threshold": 0.9, "hold_s": 1.0}.items()
            assert heard.audio_kind == "camera:aac" and silent.audio_kind == "none"
            assert silent.tracker.published == 0, list(silent.recent_events)
