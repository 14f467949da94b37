"""Video sources with latest-frame semantics on the ``time.monotonic()`` clock.

``open_video(uri)`` returns a VideoSource: a capture thread keeps only the newest frame,
so a slow consumer sees frames skip (their ``index`` jumps) instead of falling behind.

* cameras and network streams: OpenCV (FFmpeg / V4L2 / GStreamer for ``csi://``), reconnect
  with exponential backoff when the source is lost;
* files: PyAV, paced at their own timestamps (decoders run hundreds of fps), optionally
  looping, with the audio track as an AudioSource (``source.audio(rate)``);
* ``synth://``: the synthetic benchmark as an endless real-time stream (synthstream.py).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import SourceError
from .threadname import name_os_thread
from .uri import VideoURI

log = logging.getLogger(__name__)


@dataclass
class Frame:
    image: np.ndarray       # RGB uint8 HxWx3
    t: float                # time.monotonic() when captured (live) or due (file, synth)
    index: int              # per source, counts every frame produced (gaps = frames skipped)


class VideoSource:
    """The newest frame behind a condition variable; subclasses call ``_publish``."""

    name = "video"

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken = -1                    # index of the last frame latest() returned
        self._count = 0
        self._eos = False
        self._closed = False
        self._times = collections.deque(maxlen=121)
        self._stats = {"frames": 0, "reconnects": 0, "errors": 0, "dropped": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _publish(self, image: np.ndarray, t: float):
        with self._cond:
            self._frame = Frame(image, t, self._count)
            self._count += 1
            self._stats["frames"] = self._count
            self._times.append(t)
            self._cond.notify_all()

    def _finish(self):
        with self._cond:
            self._eos = True
            self._cond.notify_all()

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not returned before; waits up to ``timeout`` s (None: until a
        frame, the end of a file or close()). None on timeout, end of stream or closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._frame is None or self._frame.index <= self._taken:
                if self._eos or self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            self._taken = self._frame.index
            return self._frame

    def peek(self) -> Frame | None:
        """The newest frame, returned or not, without waiting."""
        return self._frame

    @property
    def eos(self) -> bool:
        """True once a (non-looping) file has ended and its last frame was taken."""
        with self._cond:
            return self._eos and (self._frame is None or self._frame.index <= self._taken)

    @property
    def stats(self) -> dict:
        with self._cond:
            now = time.monotonic()
            ts = [t for t in self._times if now - t < 2.0]        # a stalled source shows 0
            fps = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
            return {**self._stats, "fps": round(fps, 2)}

    def audio(self, rate: int = 16000):
        """The source's own audio track as an AudioSource, or None (cameras: use a Microphone)."""
        return None

    def _start(self, target, name: str):
        self._thread = threading.Thread(target=self._guard(target), name=name, daemon=True)
        self._thread.start()

    def _guard(self, target):
        def run():
            name_os_thread()
            try:
                target()
            except Exception:   # a bug in a capture thread must not hang the consumer
                log.exception("%s capture thread failed", self.name)
                self._stats["errors"] += 1
            finally:
                self._finish()
        return run

    def close(self, join_timeout: float = 3.0):
        """Stop the capture thread; waits at most ``join_timeout`` s for a blocked read to
        return (the daemon thread then releases the device itself)."""
        self._stop.set()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(join_timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.stats}>"


class CaptureSource(VideoSource):
    """OpenCV capture (camera index, V4L2 device, HTTP/RTSP, CSI) with reconnects."""

    def __init__(self, uri: VideoURI, read_timeout: float = 2.0, open_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.2, 5.0)):
        super().__init__()
        import cv2
        self._cv2, self.uri, self.name = cv2, uri, str(uri)
        self._read_timeout, self._open_timeout, self._backoff = read_timeout, open_timeout, backoff
        cap = self._open()
        if cap is None:
            raise SourceError(f"cannot open video source {self.name}", hint=_open_hint(uri))
        self._start(lambda: self._run(cap), f"capture {self.name}")

    def _open(self):
        cv2, uri = self._cv2, self.uri
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self._open_timeout * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self._read_timeout * 1000)]
        if uri.kind == "csi":
            cap = cv2.VideoCapture(csi_pipeline(uri), cv2.CAP_GSTREAMER)
        elif uri.kind in ("camera", "v4l2"):
            dev = int(uri.target) if uri.kind == "camera" else uri.target
            cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
            if not cap.isOpened():
                cap = cv2.VideoCapture(dev)         # other OSes: any backend
            o = uri.options
            if "fourcc" in o:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*o["fourcc"]))
            for key, prop in (("width", cv2.CAP_PROP_FRAME_WIDTH), ("height", cv2.CAP_PROP_FRAME_HEIGHT),
                              ("fps", cv2.CAP_PROP_FPS)):
                if key in o:
                    cap.set(prop, o[key])
        else:
            cap = cv2.VideoCapture(uri.target, cv2.CAP_FFMPEG, timeouts)
        if not cap.isOpened():
            cap.release()
            return None
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)         # not all backends honour it; harmless
        return cap

    def _stamp(self, cap) -> float:
        now = time.monotonic()
        if self.uri.kind in ("camera", "v4l2"):
            # V4L2 buffer timestamps are CLOCK_MONOTONIC on most drivers: the exposure, not the read
            ts = cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000.0
            if 0.0 <= now - ts < 0.5:
                return ts
        return now

    def _run(self, cap):
        cv2, delay = self._cv2, self._backoff[0]
        while not self._stop.is_set():
            if cap is None:
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._backoff[1])
                cap = self._open()
                if cap is None:
                    self._stats["errors"] += 1
                    continue
                self._stats["reconnects"] += 1
                log.info("%s: reconnected", self.name)
            ok = cap.grab()
            t = self._stamp(cap) if ok else 0.0
            ok, bgr = cap.retrieve() if ok else (False, None)
            if not ok or bgr is None:
                self._stats["errors"] += 1
                log.warning("%s: read failed, reconnecting", self.name)
                cap.release()
                cap = None
                continue
            delay = self._backoff[0]
            self._publish(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t)
        if cap is not None:
            cap.release()


def gstreamer_available() -> bool:
    import cv2
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


_WHEELS = ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python")


def opencv_report() -> dict:
    """Which OpenCV is loaded and whether it has GStreamer: on a Jetson, PyPI's opencv-python-headless
    (FFmpeg, no GStreamer) in a --system-site-packages venv shadows JetPack's (with GStreamer), and
    csi:// and GStreamer pipelines stop working. ``avgn-edge check --capture`` prints this."""
    from importlib import metadata
    try:
        import cv2
    except ImportError as exc:
        return {"loaded": False, "error": str(exc)}
    wheel = None
    for name in _WHEELS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if any(str(f).startswith("cv2/") for f in (dist.files or ())) and \
                str(dist.locate_file("cv2")) == os.path.dirname(cv2.__file__):
            wheel = f"{name} {dist.version}"
            break
    gst = gstreamer_available()
    out = {"loaded": True, "version": cv2.__version__, "path": os.path.dirname(cv2.__file__),
           "from": f"PyPI wheel {wheel}" if wheel else "the system's (JetPack/apt) or a source build",
           "gstreamer": gst}
    if not gst:
        out["note"] = ("no GStreamer: csi:// and GStreamer pipelines cannot open"
                       + (f"; on a Jetson: pip uninstall {wheel.split()[0]} (JetPack's OpenCV then loads)"
                          if wheel else ""))
    return out


def opencv_line() -> str:
    r = opencv_report()
    if not r["loaded"]:
        return f"OpenCV cannot be imported ({r['error']})"
    return (f"OpenCV {r['version']} from {r['path']} ({r['from']}), GStreamer: {'yes' if r['gstreamer'] else 'no'}"
            + (f"; {r['note']}" if r.get("note") else ""))


def csi_pipeline(uri: VideoURI) -> str:
    o = uri.options
    w, h, fps, flip = o.get("width", 1280), o.get("height", 720), o.get("fps", 30), o.get("flip", 0)
    return (f"nvarguscamerasrc sensor-id={uri.target} ! "
            f"video/x-raw(memory:NVMM), width={w}, height={h}, framerate={fps}/1, format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, width={w}, height={h}, format=BGRx ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def _open_hint(uri: VideoURI) -> str:
    if uri.kind in ("camera", "v4l2"):
        return "is a camera connected? list them with: v4l2-ctl --list-devices (or ls /dev/video*)"
    if uri.kind == "csi":
        return "check the sensor id and that nvargus-daemon runs (sudo systemctl restart nvargus-daemon)"
    return f"is the stream reachable? try ffprobe on it ({uri})"
