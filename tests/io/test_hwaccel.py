"""Hardware decode settings (avgn_edge/io/hwaccel.py), tested here with their software equivalents:
this machine has no NVDEC, VAAPI or Jetson, so every hardware path must fall back to software and
say so, an unknown value is one line naming the camera, and the Jetson pipeline string runs with
GStreamer's software decoders in place of nvv4l2decoder/nvvidconv."""

import logging
import subprocess

import pytest

from camera_rigs import camera
from serve_rigs import SYSTEM_PYTHON


def test_an_unknown_hwaccel_is_one_line_naming_the_camera():
    from avgn_edge.errors import SourceError
    from avgn_edge.io import open_video
    with pytest.raises(SourceError) as e:
        open_video("rtsp://127.0.0.1:9/x", camera="porch", hwaccel="cuda")
    assert str(e.value) == "camera porch: unknown hwaccel 'cuda'" and "nvdec" in e.value.hint


def test_auto_and_absent_hardware_fall_back_to_software_and_say_so(caplog, monkeypatch):
    from avgn_edge.io import hwaccel
    monkeypatch.setattr(hwaccel, "available", lambda: [])
    caplog.set_level(logging.INFO)
    assert hwaccel.choose("auto", "a") == "none" and hwaccel.resolve_hwaccel("auto", "a") is None
    assert hwaccel.choose("nvdec", "b") == "none" and hwaccel.choose("jetson", "c") == "none"
    text = caplog.text
    assert "camera a: hwaccel auto: software decode" in text and "camera b: hwaccel nvdec is not offered" in text


@pytest.mark.parametrize("kind", ["nvdec", "vaapi"])
def test_a_hardware_decoder_that_cannot_start_falls_back_to_software(kind, caplog, monkeypatch):
    """As if the platform offered the device: PyAV's HWAccel is used, and where it cannot be made
    (here: no GPU, no /dev/dri) the camera decodes in software and says so once."""
    from avgn_edge.io import hwaccel, open_video
    monkeypatch.setattr(hwaccel, "available", lambda: [kind])
    hw = hwaccel.resolve_hwaccel(kind, "gate")
    assert hw is not None and hw.allow_software_fallback
    with camera("--audio", "pcmu") as cam, open_video(cam.url, camera="gate", hwaccel=kind) as src:
        f = src.latest(timeout=5.0)
        assert f is not None and f.image.shape == (480, 640, 3)
        assert src.hw_used in ("software fallback", "yes")
        assert src.audio(16000) is not None


def test_the_jetson_pipeline_runs_with_its_software_equivalents():
    from avgn_edge.io.hwaccel import jetson_pipeline
    hw, sw = jetson_pipeline("rtsp://x/cam"), jetson_pipeline("rtsp://x/cam", software=True)
    assert "nvv4l2decoder ! nvvidconv" in hw and "nvjpegdec" in jetson_pipeline("rtsp://x/cam", "mjpeg")
    assert "avdec_h264 ! videoconvert" in sw and sw.split("avdec_h264")[0] == hw.split("nvv4l2decoder")[0]
    with camera() as cam:
        script = ("import sys, gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); "
                  "p = Gst.parse_launch(sys.argv[1]); p.set_state(Gst.State.PLAYING); s = p.get_by_name('sink'); "
                  "got = [s.emit('try-pull-sample', 5 * Gst.SECOND) for _ in range(3)]; p.set_state(Gst.State.NULL); "
                  "c = got[-1].get_caps().get_structure(0); print(c.get_value('width'), c.get_value('height'))")
        res = subprocess.run([SYSTEM_PYTHON, "-c", script, jetson_pipeline(cam.url, software=True)],
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.split() == ["640", "480"], res.stderr[-1000:]


def test_check_says_which_opencv_is_loaded_and_whether_it_has_gstreamer():
    from avgn_edge.cli.cmd_check import capture_report
    rep = capture_report()
    cv = rep["opencv"]
    assert cv["loaded"] and isinstance(cv["gstreamer"], bool) and cv["path"].endswith("cv2")
    if not cv["gstreamer"]:
        assert "csi://" in cv["note"]
    assert rep["pyav"]["version"] and rep["hwaccel_available"]
