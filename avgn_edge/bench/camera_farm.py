"""A local RTSP camera farm for the bench: one recording encoded once (H.264 640x360 10 fps, no
B-frames, a keyframe a second, AAC 16 kHz mono; the synth benchmark's scenes and sounds), served
on N mounts by ONE GStreamer process (rtsp_farm_server.py under the system python3) that loops
the packets without re-encoding, on 127.0.0.1 and a free port.

    with CameraFarm(8) as farm:        # farm.urls: rtsp://127.0.0.1:PORT/cam0 ... cam7
        ...
        farm.cpu_seconds()             # the server's own CPU, to report apart from the client's

The farm is bench-only: ``farm_unavailable()`` says in one line why it cannot run (no system
python3, no python3-gi or rtsp-server typelib, a GStreamer element missing); nothing in the
runtime needs GStreamer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from ..cachedir import user_cache
from .threadcpu import process_cpu

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_farm_server.py")
CLIP = {"width": 640, "height": 360, "fps": 10, "seconds": 8, "crf": 28}       # about 0.7 Mbit/s
ELEMENTS = ("appsrc", "qtdemux", "appsink", "rtph264pay", "rtpmp4gpay")


def farm_clip(folder: str | os.PathLike | None = None, seconds: int | None = None) -> Path:
    """The farm's recording, encoded on first use and kept (its name holds its settings). One slice
    per frame and a keyframe exactly every second, as cameras send (x264's default sliced threads
    split each frame, which FFmpeg's RTSP reader then returned as two frames)."""
    c = dict(CLIP, seconds=seconds or CLIP["seconds"])
    path = Path(folder or user_cache("bench")) / f"farm_{c['width']}x{c['height']}_{c['fps']}fps_{c['seconds']}s_crf{c['crf']}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frames, audio, rate = synth_scenes(c["seconds"], c["fps"], (c["width"], c["height"]))
    from ..media import write_video
    gop = f"keyint={c['fps']}:min-keyint={c['fps']}:scenecut=0"
    return write_video(path, frames, c["fps"], audio, rate, crf=c["crf"],
                       x264_params=f"bframes=0:{gop}:sliced-threads=0:threads=1")


def synth_scenes(seconds: float, fps: int, size: tuple[int, int]):
    """(RGB frames at ``fps`` and ``size``, mono sound, its rate): consecutive synth test clips,
    their frames picked at ``fps`` and scaled up to a camera's picture."""
    import cv2

    from ..config import get_preset
    from ..data.synth import SynthSpec, clip_video
    spec = SynthSpec.for_model(get_preset("synth"), seed=1000, clips=64)
    frames, sound = [], []
    index = 0
    while len(frames) < seconds * spec.fps:
        f, a = clip_video(spec, index)
        frames += f
        sound.append(a)
        index += 1
    picks = (np.arange(int(seconds * fps)) * spec.fps / fps).astype(int)
    out = [cv2.resize(frames[i], size, interpolation=cv2.INTER_LINEAR) for i in picks]
    return out, np.concatenate(sound)[: int(seconds * spec.sample_rate)], spec.sample_rate


def farm_unavailable() -> str | None:
    """Why the farm cannot run here (one line), or None."""
    if not SERVER.exists():
        return f"camera farm: {SERVER.name} is not installed with the package"
    if not os.path.exists(SYSTEM_PYTHON):
        return f"camera farm: needs the system python3 ({SYSTEM_PYTHON}) with python3-gi"
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             f"missing = [e for e in {ELEMENTS!r} if not Gst.ElementFactory.find(e)]; "
             "print(' '.join(missing))")
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"camera farm: the system python3 did not answer ({exc})"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"camera farm: needs python3-gi and gir1.2-gst-rtsp-server-1.0 for {SYSTEM_PYTHON} ({last})"
    if r.stdout.strip():
        return f"camera farm: GStreamer elements missing: {r.stdout.strip()} (gstreamer1.0-plugins-good/-base)"
    return None


class CameraFarm:
    """``cameras`` RTSP mounts of ``clip`` (default: ``farm_clip()``) from one server process."""

    def __init__(self, cameras: int, clip: str | os.PathLike | None = None, start_timeout: float = 60.0):
        if cameras < 1:
            raise ValueError("a camera farm needs at least one camera")
        self.cameras, self.clip, self._stderr = cameras, Path(clip) if clip else farm_clip(), ""
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(cameras), str(self.clip)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._first_line(start_timeout)
        if not line.startswith("ready "):
            self.close()
            raise RuntimeError(f"the camera farm did not start: {line!r} {self._stderr[-500:]}")
        self.port = int(line.split()[1])

    def _first_line(self, timeout: float) -> str:
        import selectors
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            return self.proc.stdout.readline().strip() if sel.select(timeout) else ""

    @property
    def urls(self) -> list[str]:
        return [f"rtsp://127.0.0.1:{self.port}/cam{i}" for i in range(self.cameras)]

    def cpu_seconds(self) -> float:
        return process_cpu(self.proc.pid)

    def close(self, timeout: float = 5.0):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if not self.proc.stderr.closed:
            self._stderr = self.proc.stderr.read()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
