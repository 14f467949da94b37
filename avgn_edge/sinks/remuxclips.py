"""Event clips copied from the camera's record stream (its main, high-resolution stream) without
re-encoding: the packets of ``io.RecordStream`` remuxed into MP4 by PyAV, video as it came (an
Orin Nano has no hardware encoder; nothing is decoded), sound as it came where MP4 carries its
codec (AAC, Opus, MP3) and otherwise (G.711, G.726) decoded and encoded as AAC, which is cheap.

A clip starts at the record stream's keyframe at or before ``start - pre_capture`` and ends
``post_capture`` s after the event (``max_seconds`` at most), written to ``<id>.mp4.part`` and
renamed when complete, and listed in the camera's clip index like every clip (sinks/clips.py:
retention, crash cleanup). A reconnect whose codec parameters differ (another resolution or sound
codec) finishes the clip and starts the next one, ``<id>-2.mp4``, at the new stream's first
keyframe; a reconnect with the same parameters goes on in the same clip. While the record stream cannot be opened, a clip is encoded from the detect stream's
frames as ``ClipSink`` does (said once by the record stream).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from .clips import ClipSink, PartWriter

log = logging.getLogger("avgn_edge.sinks.clips")
MP4_AUDIO = ("aac", "opus", "mp3", "mp2", "ac3", "eac3", "alac", "flac")


class RemuxWriter(PartWriter):
    """One MP4 whose packets are the record stream's; ``finish`` renames the ``.part``."""

    takes_frames = False                               # fed with packets, not with the snippets' frames

    def __init__(self, path: Path, first):
        import av
        self.av, self.path, self.gen, self.t0 = av, path, first.gen, first.t
        self.tmp = path.with_name(path.name + ".part")
        self.c = av.open(str(self.tmp), "w", format="mp4")
        self.v = self.c.add_stream_from_template(self.gen.video)
        self.a = self.decoder = None
        a = self.gen.audio
        if a is not None and a.codec_context.name in MP4_AUDIO:
            self.a = self.c.add_stream_from_template(a)
        elif a is not None:                            # G.711 and the like: MP4 cannot carry them
            self.decoder = av.CodecContext.create(a.codec_context.name, "r")
            self.decoder.sample_rate, self.decoder.layout = a.codec_context.sample_rate, a.codec_context.layout
            self.a = self.c.add_stream("aac", rate=a.codec_context.sample_rate, layout="mono")
            self.encoders = (self.a,)
        self.origin: dict[bool, int] = {}             # video? -> the input pts at the clip's start
        self.last_dts: dict[bool, int] = {}
        self.seq, self.t_end, self.copied, self.skipped = 0, first.t, 0, 0

    def add(self, p) -> bool:
        """Mux one ring packet; False if it comes from a reconnect with other codec parameters (the
        clip must end). A reconnect with the same parameters goes on in this clip."""
        if p.gen is not self.gen:
            if p.gen.params != self.gen.params:
                return False
            self.gen = p.gen
            self.origin.clear()                        # the new connection's timestamps start afresh
        self.seq = p.seq
        if p.t < self.t0 - 1e-3 or (not p.video and self.a is None):
            return True
        src = p.packet
        tb = src.time_base
        if p.video not in self.origin:                 # each track's own timestamps from the clip's start
            self.origin[p.video] = (min(src.pts, src.dts if src.dts is not None else src.pts)
                                    - int(round((p.t - self.t0) / tb)))
        off = self.origin[p.video]
        pts, dts = src.pts - off, (src.dts if src.dts is not None else src.pts) - off
        if dts <= self.last_dts.get(p.video, -1):       # a timestamp that went back (a jump): not muxable
            self.skipped += 1
            return True
        self.last_dts[p.video] = dts
        if not p.video and self.decoder is not None:
            self._transcode(src, pts, tb)
        else:
            q = self.av.Packet(bytes(src))
            q.pts, q.dts, q.time_base, q.is_keyframe = pts, dts, tb, src.is_keyframe
            if src.duration:
                q.duration = src.duration
            q.stream = self.v if p.video else self.a
            self.c.mux(q)
        if p.video:
            self.copied += 1
            self.t_end = p.t
        return True

    def _transcode(self, src, pts: int, tb):
        q = self.av.Packet(bytes(src))
        q.pts, q.time_base = pts, tb
        for frame in self.decoder.decode(q):
            frame.pts, frame.time_base = int(round(pts * tb * frame.sample_rate)), Fraction(1, frame.sample_rate)
            for out in self.a.encode(frame):
                self.c.mux(out)



class RemuxClipSink(ClipSink):
    """ClipSink whose clips copy the record stream (``record``: an io.RecordStream it owns)."""

    def __init__(self, media, record, **kw):
        super().__init__(media, **kw)
        self.record = record
        self.copied = self.encoded = 0

    def _start(self, ev: dict):
        if not self.record.usable:
            self.encoded += 1
            return super()._start(ev)
        first = self.record.since(ev["start_time"] - self.pre)
        if not first:
            self.encoded += 1
            return super()._start(ev)
        self._open_remux(ev, first)

    def _open_remux(self, ev: dict, packets: list, part: int = 1):
        path = self.media.clip(ev)
        if part > 1:
            path = path.with_name(f"{path.stem}-{part}{path.suffix}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.index.add(path)                         # before the .part exists: a crash's is ours to remove
            writer = RemuxWriter(path, packets[0])
        except Exception as exc:
            self.failed += 1
            log.warning("clip %s: cannot start (%s)", ev["id"], exc)
            return
        writer.part = part
        self.open[ev["id"]] = (writer, ev, None)
        self.copied += 1
        self._feed(ev["id"], writer, packets)

    def _feed(self, eid: str, writer, packets: list):
        for i, p in enumerate(packets):
            if writer.add(p):
                continue
            w, ev, stop = self.open[eid]                 # new codec parameters: this clip ends, the next begins
            self._finish(eid)
            rest = [q for q in packets[i:] if q.gen is p.gen]
            start = next((j for j, q in enumerate(rest) if q.key), None)
            if start is not None:
                self._open_remux(ev, rest[start:], writer.part + 1)
                if eid in self.open:
                    self.open[eid] = (self.open[eid][0], ev, stop)
            return

    def frame(self, camera, frame, audio, t):
        for eid, (w, ev, stop) in list(self.open.items()):
            if not isinstance(w, RemuxWriter):
                continue
            self._feed(eid, w, self.record.after(w.seq))
            if eid not in self.open:
                continue
            w = self.open[eid][0]
            if stop is not None and (w.t_end > stop or t > stop + 2.0):
                self._finish(eid)                        # past the end (by the record stream, or it stalled)
            elif w.t_end - w.t0 >= self.max_seconds:
                log.warning("clip %s reached %d s: closed", eid, self.max_seconds)
                self._finish(eid)
        super().frame(camera, frame, audio, t)           # the frame ring (snapshots) and the encoded clips

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "clips_copied": self.copied, "clips_encoded": self.encoded}

    def close(self):
        try:
            super().close()
        finally:
            if self.record is not None:
                self.record.close()
