"""A video file played in real time with PyAV: frames at their own timestamps, audio track
on the same clock.

Frame ``t`` = start + loop * duration + (pts - first pts): the time the frame is due, so
a frame and its sound stay aligned however late the decoder runs. A decoder that falls
more than ``max_lag`` behind drops frames (counted) but still shows one every ``max_lag``.
"""

from __future__ import annotations

import logging
import os
import time

from ..errors import SourceError
from ..media import _av, _first_line, read_audio, rgb
from .track import TrackAudio, array_render
from .video import VideoSource

log = logging.getLogger(__name__)


class FileSource(VideoSource):
    def __init__(self, path: str | os.PathLike, loop: bool = False, max_lag: float = 0.25,
                 start_delay: float = 0.05):
        super().__init__()
        self.path, self.name, self.loop, self.max_lag = str(path), os.path.basename(str(path)), loop, max_lag
        av = self._av = _av()
        if os.path.isfile(self.path) and os.path.getsize(self.path) == 0:
            raise SourceError(f"{self.path} is empty (0 bytes)")
        try:
            container = av.open(self.path)
            if not container.streams.video:
                container.close()
                raise SourceError(f"{self.path} has no video stream")
            frames = self._decoder(container)
            first = next((f for f in frames if f.time is not None), None)
            if first is None:
                container.close()
                raise SourceError(f"{self.path} has no decodable video frames")
            vs = container.streams.video[0]
            rate = float(vs.average_rate or vs.guessed_rate or 30)
            self.period = 1.0 / rate if rate > 0 else 1 / 30
            self.first_time = float(first.time)
            # looping needs the exact duration up front: the audio track repeats with it
            self.duration = self._scan_duration() if loop else None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise SourceError(f"cannot decode {self.path}: {_first_line(exc)}") from None
        self.t_start = time.monotonic() + start_delay
        self._video_end: float | None = None
        self._audio: dict[int, TrackAudio | None] = {}
        self._start(lambda: self._run(container, frames, first), f"file {self.name}")

    def _decoder(self, container):
        # No frame threading (thread_type AUTO/FRAME): with PyAV's logging callback on (media._av
        # sets it), freeing a decoder while a frame thread logs deadlocks on the GIL - seen here
        # when a source was closed mid-file (PyAV issues #751, #909). Slice threads are idle then.
        vs = container.streams.video[0]
        vs.thread_type = "SLICE"
        return container.decode(vs)

    def _scan_duration(self) -> float:
        """First pts to the end of the last packet, by demuxing only (no decoding)."""
        with self._av.open(self.path) as c:
            vs = c.streams.video[0]
            end = None
            for pkt in c.demux(vs):
                if pkt.pts is not None:
                    e = (pkt.pts + (pkt.duration or 0)) * vs.time_base
                    e = float(e) + (0.0 if pkt.duration else self.period)
                    end = e if end is None else max(end, e)
        return max((end or 0.0) - self.first_time, self.period)

    def _run(self, container, frames, frame):
        loop_index, last_pub, last_due, in_pass = 0, float("-inf"), self.t_start, 0
        try:
            while not self._stop.is_set():
                if frame is None:
                    container.close()
                    if not self.loop or in_pass == 0:
                        break
                    loop_index, in_pass = loop_index + 1, 0
                    container = self._av.open(self.path)
                    frames = self._decoder(container)
                elif frame.time is not None:
                    due = self.t_start + loop_index * (self.duration or 0.0) + (frame.time - self.first_time)
                    now = time.monotonic()
                    if due > now and self._stop.wait(due - now):
                        break
                    now = time.monotonic()
                    if now - due > self.max_lag and now - last_pub < self.max_lag:
                        self._stats["dropped"] += 1
                    else:
                        self._publish(rgb(frame), due)
                        last_pub = now
                    last_due, in_pass = due, in_pass + 1
                try:
                    frame = next(frames, None)
                except self._av.error.FFmpegError as exc:
                    self._stats["errors"] += 1
                    log.warning("%s: decoding error, %s: %s", self.name,
                                "restarting" if self.loop else "stopping", exc)
                    frame = None
        finally:
            container.close()
            self._video_end = last_due + self.period

    def audio(self, rate: int = 16000) -> TrackAudio | None:
        """The file's audio track resampled to ``rate``, on the frames' clock; None if it has none."""
        rate = int(rate)
        if rate not in self._audio:
            try:
                samples, start = read_audio(self.path, rate)
            except (self._av.error.FFmpegError, OSError, ValueError) as exc:
                raise SourceError(f"cannot decode the audio of {self.path}: {_first_line(exc)}") from None
            if samples is None:
                self._audio[rate] = None
            else:
                offset = start - self.first_time
                end = self.t_start + offset + len(samples) / rate

                def until(end=end):
                    now = time.monotonic()
                    if self.loop or self._video_end is None:
                        return now
                    return min(now, max(self._video_end, end))

                self._audio[rate] = TrackAudio(array_render(samples, offset, rate, self.duration), rate,
                                               self.t_start, since=self.t_start, until=until)
        return self._audio[rate]
