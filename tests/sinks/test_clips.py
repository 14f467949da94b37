"""Event clips and snapshots: checked with ffprobe (a video and an audio stream, the pre-roll and the
post-capture in, a keyframe first), written atomically, retention by days and per label."""

import json
import os
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest

from output_rigs import LABELS, decision

from avgn_edge.events import EventSettings, EventTracker
from avgn_edge.sinks.clips import ClipIndex, ClipSink
from avgn_edge.sinks.records import Media

FPS, RATE = 4.0, 16000


def ffprobe(path) -> dict:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe (ffmpeg) is not installed")
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    first = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-read_intervals", "%+#1",
                            "-show_entries", "frame=key_frame,pict_type", "-of", "json", str(path)],
                           capture_output=True, text=True, check=True).stdout
    return {**json.loads(out), "first": json.loads(first)["frames"][0]}


def stream(sink, seconds, events_at, t0=100.0):
    """Frames + audio at the snippet rate through the sink, decisions through a real tracker."""
    tracker = EventTracker(LABELS, EventSettings(threshold=0.5, hold=0.5), camera="door")
    hop = int(RATE / FPS)
    out = []
    for i in range(int(seconds * FPS)):
        t = t0 + i / FPS
        img = np.full((96, 128, 3), (i * 7) % 255, np.uint8)
        img[:, : 8 + i % 100] = 255                                  # a moving edge: frames differ
        sink.frame("door", img, 0.2 * np.sin(np.arange(i * hop, (i + 1) * hop) / 5).astype(np.float32), t)
        on = any(a <= t - t0 < b for a, b in events_at)
        for tr in tracker.update(decision(t, bell=0.9 if on else 0.0)):
            sink.event("door", tr)
            out.append(tr)
    return out


def test_a_clip_has_sound_the_pre_roll_and_post_capture_and_starts_on_a_keyframe(tmp_path):
    sink = ClipSink(Media(tmp_path / "clips"), camera="door", fps=FPS, sample_rate=RATE, pre_capture=2.0, post_capture=2.0)
    trs = stream(sink, 5.0, [(3.0, 3.75)])
    new, end = trs[0].event, trs[-1].event
    clip, snap = sink.media.clip(new), sink.media.snapshot(new)
    assert not clip.exists() and clip.with_name(clip.name + ".part").exists()   # still recording: absent
    assert snap.exists() and cv2.imread(str(snap)).shape == (96, 128, 3)        # the snapshot comes at once
    stream(sink, 4.0, [], t0=105.0)                                             # past end + post_capture
    assert clip.exists() and not clip.with_name(clip.name + ".part").exists()
    info = ffprobe(clip)
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    assert int(kinds["audio"]["sample_rate"]) == RATE
    heard = end["end_time"] - new["start_time"]
    assert float(info["format"]["duration"]) >= 2.0 + heard + 2.0 - 0.3        # pre + event + post (one frame)
    assert float(kinds["audio"]["duration"]) >= 2.0 + heard + 2.0 - 0.3
    assert info["first"]["key_frame"] == 1
    assert sink.counters()["clips"] == 1 and sink.counters()["snapshots"] >= 1


def test_closing_finishes_open_clips_and_a_crash_leaves_no_clip(tmp_path):
    media = Media(tmp_path / "clips")
    sink = ClipSink(media, camera="door", fps=FPS, sample_rate=RATE, pre_capture=1.0, post_capture=5.0)
    trs = stream(sink, 3.0, [(1.5, 10)])
    clip = media.clip(trs[0].event)
    part = clip.with_name(clip.name + ".part")
    assert part.exists() and not clip.exists()
    # a crash: the process dies with the .part there (and its folder lock with it); the next start
    # removes the .part and never shows it as a clip
    sink._held.close()
    ClipSink(media, camera="door", fps=FPS, sample_rate=RATE).close()
    assert not part.exists() and not clip.exists()
    sink2 = ClipSink(media, camera="door", fps=FPS, sample_rate=RATE, pre_capture=1.0, post_capture=5.0)
    trs = stream(sink2, 3.0, [(1.5, 10)])
    sink2.close()                                                   # a clean stop: the clip is finished
    assert media.clip(trs[0].event).exists() and ffprobe(media.clip(trs[0].event))["first"]["key_frame"] == 1


def test_retention_by_days_and_per_label(tmp_path):
    media = Media(tmp_path / "clips")
    old = time.time() - 3 * 86400
    files = {}
    for label in ("bell", "buzz"):
        d = media.root / "door" / label
        d.mkdir(parents=True)
        for name in ("old.mp4", "old.jpg", "new.mp4"):
            (d / name).write_bytes(b"x")
        for name in ("old.mp4", "old.jpg"):
            os.utime(d / name, (old, old))
        for name in ("old.mp4", "old.jpg", "new.mp4"):        # as the sink wrote them: in its index
            ClipIndex(media.root / "door").add(d / name)
        files[label] = d
    sink = ClipSink(media, camera="door", fps=FPS, sample_rate=RATE, retain_days=5, retain_labels={"buzz": 1})
    assert sorted(p.name for p in files["bell"].iterdir()) == ["new.mp4", "old.jpg", "old.mp4"]   # 5 days
    assert sorted(p.name for p in files["buzz"].iterdir()) == ["new.mp4"]                         # buzz: 1 day
    assert sink.counters()["clips_deleted"] == 2
