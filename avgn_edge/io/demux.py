"""One connection, picture and sound: network streams demuxed by PyAV (FFmpeg).

``DemuxSource`` reads RTSP (TCP or UDP), RTMP and HTTP(S) streams (MJPEG, FLV, HLS, MPEG-TS):
the video is decoded to the newest-frame slot of VideoSource, the audio (AAC, G.711 µ-law and
A-law, G.726, Opus, MP3: whatever FFmpeg decodes) is resampled to the model's rate, mono, by
PyAV's AudioResampler and written into a StreamAudio ring. Both are stamped from the stream's
own timestamps through ``StreamClocks`` (ptsclock.py), so the snippet clock pairs each frame
with the sound that was around it when it was captured, not with what arrived with it.

Faults: a lost connection reconnects with exponential backoff (a new decoder each time, so
codec parameters may change); audio that stops while the picture goes on leaves a counted gap
(the picture keeps running); a track that starts late is silence (not ok) until it starts;
timestamps that jump or wrap re-anchor; the audio clock's drift is measured and corrected. A
stream without an audio track, or with one FFmpeg cannot decode, says so once and runs on the
picture alone. Credentials in the URL never reach a log line or an error (``redact_uri``).
"""

from __future__ import annotations

import logging
import re
import threading
import time

import numpy as np

from ..errors import SourceError
from .ptsclock import StreamClocks
from .streamaudio import StreamAudio
from .uri import _SECRET, VideoURI, redact_uri
from .video import VideoSource

log = logging.getLogger(__name__)
_USERINFO = re.compile(r"(\w+://)[^/@\s'\"]*@")


def redact_text(text: str, raw: str) -> str:
    """An error message with the URL's credentials redacted: the URL itself, any user info, and every
    secret the URL holds (user, password, secret-looking query values) wherever else it appears."""
    from urllib.parse import unquote, urlsplit
    text = str(text).replace(raw, redact_uri(raw))
    try:
        parts = urlsplit(raw)
        secrets = [parts.username, parts.password]
    except ValueError:
        parts, secrets = None, []
    if parts is not None and parts.query:
        secrets += [v for k, _, v in (i.partition("=") for i in parts.query.split("&")) if _SECRET.search(k)]
    for secret in sorted({x for x in secrets if x} | {unquote(x) for x in secrets if x}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _USERINFO.sub(r"\1***@", text)


def open_options(uri: VideoURI, transport: str = "tcp") -> dict:
    opts = {"analyzeduration": "1000000"}
    if uri.kind == "rtsp":
        opts["rtsp_transport"] = transport
    return opts


class DemuxSource(VideoSource):
    def __init__(self, uri: VideoURI, *, camera: str | None = None, transport: str = "tcp",
                 read_timeout: float = 5.0, open_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.2, 5.0), hwaccel=None):
        super().__init__()
        import av
        self._av, self.uri, self.name = av, uri, str(uri)
        self.camera = camera or self.name
        if transport not in ("tcp", "udp"):
            raise SourceError(f"camera {self.camera}: rtsp transport must be tcp or udp, got {transport!r}")
        self._opts, self._backoff = open_options(uri, transport), backoff
        self._timeout = (open_timeout, read_timeout)
        self._hwaccel = hwaccel                   # an av.codec.hwaccel.HWAccel or None
        self.clocks = StreamClocks()
        self._audio: StreamAudio | None = None
        self._said: set = set()                   # warnings said once
        self.audio_codec: str | None = None       # the track's codec, None: no audio track
        self.audio_note = ""                      # why there is no usable audio
        self.video_codec = ""
        self.hw_used = "none"
        self._lock = threading.Lock()
        container = self._open()
        if container is None:
            raise SourceError(f"cannot open video source {self.name}: {self._last_error}",
                              hint=f"is the stream reachable? try: ffprobe '{self.name}'")
        self._start(lambda: self._run(container), f"demux {self.name}")

    # -- connection
    def _open(self):
        av = self._av
        kw = {"hwaccel": self._hwaccel} if self._hwaccel is not None else {}
        try:
            c = av.open(self.uri.target, options=dict(self._opts), timeout=self._timeout, **kw)
        except Exception as exc:                  # av.error.*: refused, timed out, 401, not found, ...
            self._last_error = redact_text(exc, self.uri.target)
            if not kw:
                return None
            self._hwaccel = None                  # the device could not be made (no GPU, no permission)
            c = self._open()
            if c is not None:
                self.hw_used = "software fallback"
                self._once("hw", "camera %s: hardware decode failed (%s): software decode", self.camera,
                           self._last_error)
            return c
        if not c.streams.video:
            c.close()
            self._last_error = "no video track"
            return None
        v = c.streams.video[0]
        self.video_codec = v.codec_context.name
        if self._hwaccel is not None:
            self.hw_used = "yes" if getattr(v.codec_context, "is_hwaccel", False) else "software fallback"
        a = c.streams.audio[0] if c.streams.audio else None
        codec = a.codec_context.name if a is not None and a.codec_context is not None else None
        if a is None:
            self.audio_codec, self.audio_note = None, "the stream has no audio track"
            self._once("noaudio", "camera %s: the stream has no audio track: running on the picture alone",
                       self.camera)
        elif codec is None or not _decodable(av, codec):
            self.audio_codec, self.audio_note = None, f"audio codec {codec or a.codec_context} cannot be decoded"
            self._once("codec", "camera %s: %s: running on the picture alone", self.camera, self.audio_note)
            a = None
        else:
            self.audio_codec, self.audio_note = codec, ""
            if self._audio is not None and self._audio.codec != codec:    # the camera came back with another codec
                log.info("camera %s: sound now %s (was %s)", self.camera, codec, self._audio.codec)
                self._audio.codec = codec
        self._streams = (v, a)
        return c

    def _once(self, key, msg, *args):
        if key not in self._said:
            self._said.add(key)
            log.warning(msg, *args)

    def audio(self, rate: int = 16000):
        """The camera's sound at ``rate`` Hz, mono, as an AudioSource; None without a usable track."""
        if self.audio_codec is None:
            return None
        with self._lock:
            if self._audio is None or self._audio.rate != int(rate):
                self._audio = StreamAudio(rate, codec=self.audio_codec)
                self._audio.clock_stats = self.clocks.stats
            return self._audio

    # -- the demux thread
    def _run(self, container):
        delay = self._backoff[0]
        while not self._stop.is_set():
            if container is None:
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._backoff[1])
                container = self._open()
                if container is None:
                    self._stats["errors"] += 1
                    continue
                self._stats["reconnects"] += 1
                log.info("%s: reconnected", self.name)
            try:
                began = time.monotonic()
                if self._pump(container) and time.monotonic() - began > 10.0:
                    delay = self._backoff[0]          # a connection that lasted: the next outage starts afresh
            except Exception as exc:              # read timeout, connection reset, corrupt data
                self._stats["errors"] += 1
                log.warning("%s: %s, reconnecting", self.name, redact_text(exc, self.uri.target))
            finally:
                container.close()
                container = None
                if self._audio is not None:
                    self._audio.note_gap()

    def _pump(self, container) -> bool:
        """Demux and decode until the stream ends or fails; True if a frame came."""
        av, (v, a) = self._av, self._streams
        resampler, ring, fed = None, None, [0.0, 0]           # seconds in, samples out
        got = False
        streams = [s for s in (v, a) if s is not None]
        for packet in container.demux(streams):
            if self._stop.is_set():
                break
            now = time.monotonic()
            if packet.stream is v:
                for frame in packet.decode():
                    pts = frame.time if frame.time is not None else packet_time(packet)
                    t = now if pts is None else min(self.clocks.video_time(pts, now), now)
                    self._publish(frame.to_ndarray(format="rgb24"), t)
                    got = True
                continue
            if self._audio is None:                           # nobody listens (yet): do not decode
                continue
            if ring is not self._audio:
                ring = self._audio
                resampler, fed = av.AudioResampler(format="flt", layout="mono", rate=ring.rate), [0.0, 0]
            for frame in packet.decode():
                if frame.time is None or not frame.samples:
                    continue
                dur = frame.samples / frame.sample_rate
                t = self.clocks.audio_time(frame.time, now, dur)
                out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                x = np.concatenate(out) if out else np.zeros(0, np.float32)
                fed[0] += dur
                fed[1] += len(x)
                held = fed[0] - fed[1] / ring.rate            # what the resampler still holds
                ring.write(t + dur - held - len(x) / ring.rate, x)
        return got

    @property
    def stats(self) -> dict:
        out = super().stats
        out.update(self.clocks.stats(time.monotonic()))
        out["audio_codec"], out["video_codec"] = self.audio_codec, self.video_codec
        return out


def packet_time(packet):
    return None if packet.pts is None else float(packet.pts * packet.time_base)


def _decodable(av, codec: str) -> bool:
    try:
        av.CodecContext.create(codec, "r")
        return True
    except Exception:
        return False
