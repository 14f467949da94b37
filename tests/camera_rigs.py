"""Rigs for the cameras-that-hear tests: local RTSP cameras with sound (tests/rtsp_camera.py under
the system python3), test media made by ffmpeg into the test's tmp_path, and the click camera."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import pytest

from live_rigs import _unavailable
from serve_rigs import SYSTEM_PYTHON, RtspCamera, free_port

CODECS = ("pcmu", "pcma", "aac", "opus")


def need_cameras():
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import Gst; Gst.init(None); "
                            "assert all(Gst.ElementFactory.find(e) for e in ('x264enc', 'mulawenc', 'opusenc', "
                            "'rtpmp4gpay', 'uridecodebin'))"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable("RTSP cameras with sound need python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-"
                     f"base/good/ugly/libav for the system python3 ({probe.stderr.strip().splitlines()[-1:]})")


@contextlib.contextmanager
def camera(*args, fps: int = 10):
    """One RTSP camera (tests/rtsp_camera.py args), stopped afterwards."""
    need_cameras()
    cam = RtspCamera(free_port(), fps, args)
    cam.restore()
    try:
        yield cam
    finally:
        cam.cut()


def ffmpeg(*args, timeout=120):
    if shutil.which("ffmpeg") is None:
        _unavailable("these tests make their media with ffmpeg (apt install ffmpeg)")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True,
                   timeout=timeout)


def click_file(path, seconds: int = 40, every: float = 2.0):
    """A black picture that is white for one frame (10 fps) at the instant a 10 ms 2 kHz click sounds,
    every ``every`` s: the pairing measurement's camera."""
    ffmpeg("-f", "lavfi", "-i", f"color=black:s=640x480:r=10:d={seconds},drawbox=x=0:y=0:w=640:h=480:color=white:"
           f"t=fill:enable='lt(mod(t\\,{every})\\,0.05)'", "-f", "lavfi", "-i",
           f"aevalsrc='if(lt(mod(t\\,{every})\\,0.01)\\,0.8*sin(2*PI*2000*t)\\,0)':s=48000:d={seconds}",
           "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le", path)
    return path


@pytest.fixture()
def click_camera_file(tmp_path):
    return click_file(tmp_path / "click.mkv")
