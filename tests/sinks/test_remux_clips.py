"""RemuxClipSink on its own: packets of a real H.264 + AAC file stand in for the record stream (each
"arrives" at its own timestamp), so the clip's span, its keyframe start and the clip index are
checked without a network camera; an encoded clip finishing (and pruning) meanwhile keeps the copied
clip in the index."""

from types import SimpleNamespace

import numpy as np
import pytest

av = pytest.importorskip("av")
from camera_rigs import ffmpeg  # noqa: E402

from avgn_edge.io.recordstream import Generation, Packet  # noqa: E402
from avgn_edge.sinks.records import Media  # noqa: E402
from avgn_edge.sinks.remuxclips import RemuxClipSink  # noqa: E402

T0 = 1000.0


class FileRecord:
    """The record stream's reading side over a file's packets; only those with t <= now have come."""

    def __init__(self, path):
        self.c = av.open(str(path))
        gen = Generation.of(1, self.c)
        self.packets = []
        for i, p in enumerate(self.c.demux()):
            if p.pts is None or not p.size:
                continue
            video = p.stream.type == "video"
            self.packets.append(Packet(i + 1, T0 + float(p.pts * p.time_base), p, video, video and p.is_keyframe, gen))
        self.now, self.usable = T0, True

    def since(self, t0):
        came = [p for p in self.packets if p.t <= self.now]
        key = [p for p in came if p.key and p.t <= t0][-1]
        return [p for p in came if p.seq >= key.seq]

    def after(self, seq):
        return [p for p in self.packets if p.seq > seq and p.t <= self.now]

    def close(self):
        self.c.close()


def event(eid, kind, start, end=None):
    return SimpleNamespace(type=kind, event={"id": eid, "camera": "door", "label": "alarm", "start_time": start,
                                             "end_time": end, "top_score_time": start})


def test_copied_clip_spans_keyframe_pre_roll_to_post_and_stays_indexed(tmp_path):
    src = tmp_path / "cam.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=320x240:r=10:d=8", "-f", "lavfi", "-i", "sine=f=440:r=16000:d=8",
           "-c:v", "libx264", "-g", "10", "-bf", "0", "-c:a", "aac", src)
    rec = FileRecord(src)
    sink = RemuxClipSink(Media(tmp_path / "clips", snapshots=False), rec, camera="door", fps=4, sample_rate=16000,
                         pre_capture=1.2, post_capture=0.5)
    blank = np.zeros((240, 320, 3), np.uint8)

    def until(t):
        while rec.now < t - 1e-9:
            rec.now += 0.25
            sink.frame("door", blank, None, rec.now)

    until(T0 + 2.5)
    sink.event("door", event("A", "new", T0 + 2.5))           # copied: from the keyframe at or before 1.3 s
    rec.usable = False
    sink.event("door", event("B", "new", T0 + 2.5))           # the record stream away: encoded
    until(T0 + 3.5)
    sink._pruned_at = -1e9                                    # B's finish prunes
    sink.event("door", event("B", "end", T0 + 2.5, T0 + 3.5))
    until(T0 + 4.5)
    sink.event("door", event("A", "end", T0 + 2.5, T0 + 4.5))
    until(T0 + 7.0)
    counters = sink.counters()
    index = sink.index.entries()
    sink.close()
    a, b = tmp_path / "clips/door/alarm/A.mp4", tmp_path / "clips/door/alarm/B.mp4"
    assert counters["clips"] == 2 and counters["clips_copied"] == 1 and counters["clips_encoded"] == 1
    assert sorted(index) == ["alarm/A.mp4", "alarm/B.mp4"]
    with av.open(str(a)) as c:
        video = [p for p in c.demux(c.streams.video[0]) if p.size]
        assert c.streams.audio[0].codec_context.name == "aac"
    frames = [p for p in rec.packets if p.video and p.t >= T0 + 1.0 - 1e-6][:len(video)]
    assert video[0].is_keyframe and [bytes(p) for p in video] == [bytes(p.packet) for p in frames]   # the file's own
    assert 4.0 <= frames[-1].t - frames[0].t <= 4.5                  # 1.0 s (keyframe) to past 5.0 s (end + post)
