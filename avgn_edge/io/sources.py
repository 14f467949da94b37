"""``open_video``: a video source URI to its source (the factory stands above the source classes,
which import video.py's VideoSource)."""

from __future__ import annotations

from ..errors import SourceError
from .uri import parse_video_uri
from .video import CaptureSource, VideoSource, gstreamer_available


def open_video(uri, *, loop: bool = False, read_timeout: float = 2.0, open_timeout: float = 5.0,
               backoff: tuple[float, float] = (0.2, 5.0), synth_spec=None) -> VideoSource:
    """Open a video source URI (see avgn_edge.io.uri). SourceError if it cannot be opened."""
    u = parse_video_uri(uri)
    if u.kind == "synth":                           # the sources load when asked for (cv2, av, numpy)
        from .synthstream import SynthStream
        return SynthStream(synth_spec, **u.options)
    if u.kind == "file":
        from .filesource import FileSource
        return FileSource(u.target, loop=loop)
    if u.kind == "csi" and not gstreamer_available():
        raise SourceError("OpenCV here has no GStreamer: install JetPack's OpenCV or use /dev/videoN",
                          hint="python3 -c \"import cv2; print(cv2.getBuildInformation())\" | grep GStreamer")
    return CaptureSource(u, read_timeout=read_timeout, open_timeout=open_timeout, backoff=backoff)
