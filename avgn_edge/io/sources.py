"""``open_video``: a video source URI to its source (the factory stands above the source classes,
which import video.py's VideoSource)."""

from __future__ import annotations

import threading

from ..errors import SourceError
from .uri import parse_video_uri
from .video import CaptureSource, VideoSource, gstreamer_available, opencv_line


_AV_IMPORT = threading.Lock()


def open_video(uri, *, loop: bool = False, read_timeout: float = 2.0, open_timeout: float = 5.0,
               backoff: tuple[float, float] = (0.2, 5.0), synth_spec=None, camera: str | None = None,
               transport: str = "tcp", hwaccel: str = "none") -> VideoSource:
    """Open a video source URI (see avgn_edge.io.uri). SourceError if it cannot be opened.

    Network streams (rtsp, rtmp, http) go through one PyAV connection carrying picture and sound
    (demux.py); ``transport`` is RTSP's (tcp or udp); ``hwaccel`` (auto, none, jetson, nvdec,
    vaapi) picks the decoder (hwaccel.py); ``camera`` names the source in warnings."""
    u = parse_video_uri(uri)
    if u.kind in ("file", "rtsp", "http", "rtmp"):
        with _AV_IMPORT:            # streams open on their own threads: PyAV's first import is not thread-safe
            import av  # noqa: F401
    if u.kind == "synth" and "replay" in u.options:
        from .replay import ReplayStream
        return ReplayStream(synth_spec, **u.options)
    if u.kind == "synth":                           # the sources load when asked for (cv2, av, numpy)
        from .synthstream import SynthStream
        return SynthStream(synth_spec, **u.options)
    if u.kind == "file":
        from .filesource import FileSource
        return FileSource(u.target, loop=loop)
    if u.kind == "csi" and not gstreamer_available():
        raise SourceError(f"csi:// needs OpenCV with GStreamer: {opencv_line()}",
                          hint="python3 -c \"import cv2; print(cv2.getBuildInformation())\" | grep GStreamer")
    if u.kind in ("rtsp", "http", "rtmp"):
        from .demux import DemuxSource
        from .hwaccel import resolve_hwaccel
        hw = resolve_hwaccel(hwaccel, camera or str(u))
        return DemuxSource(u, camera=camera, transport=transport, read_timeout=max(read_timeout, 5.0),
                           open_timeout=open_timeout, backoff=backoff, hwaccel=hw)
    return CaptureSource(u, read_timeout=read_timeout, open_timeout=open_timeout, backoff=backoff)
