"""A stream's own timestamps onto the ``time.monotonic()`` clock.

A network camera stamps its picture and its sound on its own clocks (RTP timestamps, aligned
with each other through the RTCP sender reports that FFmpeg's RTSP demuxer reads). Here a
packet of presentation time ``pts`` (seconds) is placed at ``pts + offset`` where ``offset``
is the smallest ``arrival - pts`` seen in the last ``window`` seconds: the mapping of the
packet that came through the network fastest. No packet is then stamped later than it
arrived, a burst (the packets buffered while the stream was probed) is stamped when it was
captured, not when it came, and a clock that runs a little fast or slow is followed.

``StreamClocks`` keeps one such mapping per elementary stream. The video's is the master: the
audio is placed by the *video's* offset (so the stream's own audio/video alignment is kept)
plus the drift of the audio clock against the video clock, measured as the change, since the
audio's first ``settle`` seconds, of the difference between their two offsets; the drift
is corrected (it is added) and reported (``drift_ms``, ``drift_ppm``). A packet more than
``jump`` seconds off its mapping (a camera reboot, an RTP timestamp wrap, a stream whose
timestamps restart) re-anchors that stream's mapping and counts a jump; while the audio's and the video's mappings
disagree by more than that (the tracks' timestamps not aligned yet), the audio is placed by
its own.
"""

from __future__ import annotations

from collections import deque


class PtsClock:
    def __init__(self, window: float = 10.0, jump: float = 1.0):
        self.window, self.jump = window, jump
        self._mins: deque = deque()          # (arrival, arrival - pts), increasing second item
        self.offset: float | None = None
        self.started: float | None = None    # arrival of the first packet since the last anchor
        self.jumps = 0

    def observe(self, pts: float, arrival: float) -> float:
        """Note a packet of presentation time ``pts`` that arrived at ``arrival``; its monotonic time."""
        lag = arrival - pts
        if self.offset is not None and abs(lag - self.offset) > self.jump:
            self.jumps += 1
            self._mins.clear()
            self.offset = None
        if self.offset is None:
            self.started = arrival
        while self._mins and self._mins[-1][1] >= lag:
            self._mins.pop()
        self._mins.append((arrival, lag))
        while self._mins[0][0] < arrival - self.window:
            self._mins.popleft()
        self.offset = self._mins[0][1]
        return pts + self.offset

    def age(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started


class StreamClocks:
    """The video's mapping and the audio's, with the audio's drift against the video measured."""

    def __init__(self, window: float = 10.0, jump: float = 1.0, settle: float = 3.0):
        self.video, self.audio = PtsClock(window, jump), PtsClock(window, jump)
        self.settle = settle
        self._skew0: float | None = None     # audio offset - video offset once the audio settled
        self._anchor = (0, 0)                # the jump counts _skew0 was measured under
        self.drift = 0.0                     # s: how far the audio clock has moved against the video's
        self.unaligned = 0                   # audio packets placed by their own arrival (streams not aligned)
        self._drift_since: float | None = None

    def video_time(self, pts: float, arrival: float) -> float:
        return self.video.observe(pts, arrival)

    def audio_time(self, pts: float, arrival: float, duration: float = 0.0) -> float:
        """The monotonic time of an audio packet's first sample (``duration``: the packet's length,
        which has to be captured before it can be sent, so it is not counted as network delay)."""
        self.audio.observe(pts + duration, arrival)
        if self.video.offset is None or abs(self.audio.offset - self.video.offset) > self.video.jump:
            # no picture yet, or the two streams' timestamps are not aligned (yet): FFmpeg's RTSP
            # demuxer counts each track from its own first packet until the RTCP sender reports
            # come; a track that started late is then seconds off. The audio's own mapping
            self.unaligned += 1
            return pts + self.audio.offset
        anchor = (self.video.jumps, self.audio.jumps)
        if anchor != self._anchor:
            self._skew0, self._anchor = None, anchor
        skew = self.audio.offset - self.video.offset
        if self._skew0 is None:
            if min(self.audio.age(arrival), self.video.age(arrival)) >= self.settle:
                self._skew0, self._drift_since = skew, arrival
            return pts + self.video.offset
        self.drift = skew - self._skew0
        return pts + self.video.offset + self.drift

    def stats(self, now: float) -> dict:
        span = now - self._drift_since if self._drift_since is not None else 0.0
        return {"timestamp_jumps": self.video.jumps + self.audio.jumps,
                "drift_ms": round(1e3 * self.drift, 2),
                "drift_ppm": round(1e6 * self.drift / span, 1) if span > 30 else None}
