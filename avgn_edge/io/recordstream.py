"""A camera's record stream, demuxed but never decoded: the last seconds of its packets, for clips
copied without re-encoding (sinks/remuxclips.py).

``RecordStream`` reads the stream in a thread of its own (PyAV) and keeps its video and audio
packets, each stamped on the ``time.monotonic()`` clock from the stream's own timestamps
(``StreamClocks``, as the detect stream's frames are), in a ring that starts at a video keyframe
and spans at least ``keep`` seconds: a clip can start ``pre_capture`` seconds before an onset, at
the keyframe before that. A connection is one *generation* (its codec parameters); a reconnect
starts a new one, and a clip never mixes two. Lost connections reopen with backoff. A stream that
cannot be opened says so once, in one line naming the camera (credentials redacted); ``usable``
is then False and the clips fall back to encoding the detect stream's frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .demux import open_options, packet_time, redact_text
from .ptsclock import StreamClocks
from .uri import parse_video_uri, redact_uri

log = logging.getLogger(__name__)
MAX_PACKETS = 50_000          # a stream without keyframes cannot grow the ring past this


@dataclass
class Generation:
    """One connection: its input container (kept open while its packets are used) and streams."""
    number: int
    container: object
    video: object
    audio: object = None
    params: tuple = ()        # what a clip must not mix: codecs, picture size, sound rate and channels

    @staticmethod
    def of(number: int, container) -> "Generation":
        v = container.streams.video[0]
        a = container.streams.audio[0] if container.streams.audio else None
        vc, ac = v.codec_context, a.codec_context if a is not None else None
        params = (vc.name, vc.width, vc.height, None if ac is None else (ac.name, ac.sample_rate, ac.channels))
        return Generation(number, container, v, a, params)


@dataclass
class Packet:
    seq: int
    t: float                  # monotonic time of the packet's first sample or frame
    packet: object            # av.Packet, never modified (writers mux copies)
    video: bool
    key: bool
    gen: Generation = field(repr=False)


class RecordStream:
    def __init__(self, uri: str, *, camera: str, keep: float, transport: str = "tcp", open_timeout: float = 5.0,
                 read_timeout: float = 5.0, backoff: tuple[float, float] = (0.5, 30.0)):
        import av
        self._av, self.uri, self.camera, self.keep = av, parse_video_uri(uri), camera, keep
        self.display = redact_uri(uri)
        self._opts, self._timeout, self._backoff = open_options(self.uri, transport), (open_timeout, read_timeout), backoff
        self._ring: deque[Packet] = deque()
        self._keys: deque[Packet] = deque()          # the ring's video keyframes
        self._lock = threading.Lock()
        self._seq = 0
        self.generations = 0
        self.state = "opening"                       # open | failed (cannot be opened now) | closed
        self.reason = ""
        self._said = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"record {camera}", daemon=True)
        self._thread.start()

    @property
    def usable(self) -> bool:
        """Open, with a keyframe to start a clip at."""
        return self.state == "open" and bool(self._keys)

    def info(self) -> dict:
        """For /api/streams: the record stream (redacted), its state, why not open, its connections."""
        return {"source": self.display, "state": self.state, "reason": self.reason if self.state != "open" else None,
                "connections": self.generations}

    # -- what writers read (any thread)
    def since(self, t0: float) -> list[Packet]:
        """The packets from the last keyframe at or before ``t0`` (else the ring's first) to the newest,
        of that keyframe's generation."""
        with self._lock:
            keys = [k for k in self._keys if k.t <= t0] or list(self._keys)[:1]
            if not keys:
                return []
            start = keys[-1]
            return [p for p in self._ring if p.seq >= start.seq and p.gen is start.gen]

    def after(self, seq: int) -> list[Packet]:
        with self._lock:
            if not self._ring or self._ring[-1].seq <= seq:
                return []
            return [p for p in self._ring if p.seq > seq]

    # -- the demux thread
    def _open(self):
        try:
            return self._av.open(self.uri.target, options=dict(self._opts), timeout=self._timeout)
        except Exception as exc:                      # refused, timed out, 401, not found, ...
            self.reason = redact_text(exc, self.uri.target)
            return None

    def _run(self):
        delay = self._backoff[0]
        while not self._stop.is_set():
            container = self._open()
            if container is not None and not container.streams.video:
                container.close()
                container, self.reason = None, "no video track"
            if container is None:
                if not self._said:
                    self._said = True
                    log.warning("camera %s: record stream %s cannot be opened (%s): event clips are encoded "
                                "from the detect stream until it opens", self.camera, self.display, self.reason)
                self.state = "failed"
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            self.generations += 1
            gen = Generation.of(self.generations, container)
            if self._said or self.generations == 1:
                log.info("camera %s: record stream %s open (%s %dx%d%s): event clips copy it", self.camera,
                         self.display, gen.params[0], gen.params[1], gen.params[2],
                         f", sound {gen.params[3][0]}" if gen.params[3] else ", no sound")
            self._said = False
            self.state = "open"
            try:
                self._pump(gen)
            except Exception as exc:                  # read timeout, connection reset, corrupt data
                log.warning("camera %s: record stream: %s, reconnecting", self.camera,
                            redact_text(exc, self.uri.target))
            if not self._stop.is_set():
                self._stop.wait(delay)
        self.state = "closed"

    def _pump(self, gen: Generation):
        clocks = StreamClocks()
        streams = [s for s in (gen.video, gen.audio) if s is not None]
        for packet in gen.container.demux(streams):
            if self._stop.is_set():
                return
            pts = packet_time(packet)
            if pts is None or packet.size == 0:
                continue
            now = time.monotonic()
            video = packet.stream is gen.video
            if video:
                t = min(clocks.video_time(pts, now), now)
            else:
                dur = float(packet.duration * packet.time_base) if packet.duration else 0.0
                t = clocks.audio_time(pts, now, dur)
            self._add(packet, t, video, video and packet.is_keyframe, gen)

    def _add(self, packet, t: float, video: bool, key: bool, gen: Generation):
        with self._lock:
            if not key and (not self._keys or self._keys[-1].gen is not gen):
                return                                   # a clip starts at a keyframe of its generation
            self._seq += 1
            p = Packet(self._seq, t, packet, video, key, gen)
            self._ring.append(p)
            if key:
                self._keys.append(p)
            horizon = t - self.keep
            while len(self._keys) > 1 and (self._keys[1].t <= horizon or len(self._ring) > MAX_PACKETS):
                self._keys.popleft()
                first = self._keys[0].seq
                while self._ring and self._ring[0].seq < first:
                    self._ring.popleft()

    def close(self, timeout: float = 6.0):
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            gens = {p.gen.number: p.gen for p in self._ring}
            self._ring.clear()
            self._keys.clear()
        for g in gens.values():
            try:
                g.container.close()
            except Exception:
                pass
