"""Capture: video sources by URI and audio sources, all on the ``time.monotonic()`` clock.

    >>> from avgn_edge.io import open_video, Microphone
    >>> with open_video("synth://") as src:                     # doctest: +SKIP
    ...     audio = src.audio(16000)                            # or Microphone(rate=16000)
    ...     f = src.latest(timeout=1.0)
    ...     wave, ok = audio.window(f.t, 4000, timeout=0.2)     # the audio ending at the frame

Importing this package does not import sounddevice, cv2 or av.
"""

from .audio import AudioSource, Microphone, TrackAudio, input_devices
from .uri import VideoURI, parse_video_uri
from .sources import open_video
from .video import Frame, VideoSource

__all__ = ["AudioSource", "Frame", "Microphone", "TrackAudio", "VideoSource", "VideoURI",
           "input_devices", "open_video", "parse_video_uri"]


def __getattr__(name):
    if name == "SynthStream":
        from .synthstream import SynthStream
        return SynthStream
    if name == "FileSource":
        from .filesource import FileSource
        return FileSource
    raise AttributeError(name)
