"""synth://?replay=S: the synthetic stream rendered once and looped from memory (io/replay.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from avgn_edge.data.stream import StreamTimeline
from avgn_edge.data.synth import SynthSpec
from avgn_edge.errors import SourceError
from avgn_edge.io import open_video, parse_video_uri
from avgn_edge.io import replay


def test_replay_loops_the_synth_stream_from_memory():
    replay.clear_cache()
    with open_video("synth://?seed=8&quiet=0.5&replay=1") as src:
        loop = src.loop
        sim = StreamTimeline(SynthSpec(seed=8), quiet=0.5)
        n = len(loop.frames)
        assert n == 12 and src.timeline is None            # 1 s at 12 fps, nothing left to render from
        for j in (0, 5, 11):                                 # the loop is the synth stream's first second
            assert np.array_equal(src._render_frame(j).image, sim.frame(j))
        for j in (0, 7):                                     # ... and repeats identically
            assert np.array_equal(src._render_frame(j + 3 * n).image, src._render_frame(j).image)
        a = src._render_audio(0, 16000)
        assert np.array_equal(a, sim.audio(0, 16000))
        assert np.array_equal(src._render_audio(16000 * 5 + 100, 16000 * 5 + 4100), a[100:4100])
        assert np.array_equal(src._render_audio(15000, 17000), np.concatenate([a[15000:], a[:1000]]))


def test_replay_memory_is_the_loop_however_long_it_runs():
    replay.clear_cache()
    with open_video("synth://?seed=2&replay=0.5") as src:
        size = replay.cached_bytes()
        assert size == src.loop.nbytes == 6 * 128 * 128 * 3 + 8000 * 4
        for j in range(0, 10_000, 7):                        # 14 minutes of frames
            src._render_frame(j)
            src._render_audio(j * 1333, j * 1333 + 4000)
        assert replay.cached_bytes() == size and src.timeline is None
    with open_video("synth://?seed=2&replay=0.5") as again:   # the same stream reuses the loop
        assert again.loop is src.loop
    replay.clear_cache()
    assert replay.cached_bytes() == 0


def test_replay_keeps_the_synth_clock():
    with open_video("synth://?seed=4&replay=2") as src:
        audio = src.audio(16000)
        frames, t0 = [], time.monotonic()
        while time.monotonic() - t0 < 1.0:
            frames.append(src.latest(timeout=1.0))
        wave, ok = audio.window(frames[-1].t, 4000, timeout=0.2)
    took = time.monotonic() - t0
    ts = np.array([f.t for f in frames])
    assert 0.6 * 12 * took <= len(frames) <= 12 * took + 2
    assert np.all(np.diff(ts) > 0)
    assert ts == pytest.approx([src.t0 + (f.index + 1) / 12 for f in frames])
    assert ok and wave.shape == (4000,)


def test_replay_ground_truth_repeats_the_loops_events():
    with open_video("synth://?seed=5&gap=1-2&replay=3") as src:
        events = src.loop.events
        assert events
        truth = src.ground_truth(until=src.t0 + 2 * 3.0 + 2.9)
        later = [e for e in truth if e["t_start"] >= src.t0 + 6.0]
        assert [e["label"] for e in later] == [e["label"] for e in events if e["t_start"] <= 2.9]
        assert [e["t_start"] - src.t0 - 6.0 for e in later] == pytest.approx(
            [e["t_start"] for e in events if e["t_start"] <= 2.9])


@pytest.mark.parametrize("uri", ["synth://?replay=0", "synth://?replay=-1", "synth://?replay=nan",
                                 "synth://?replay=1000", "synth://?replay=x"])
def test_bad_replay_is_one_line(uri):
    with pytest.raises(SourceError, match="replay") as err:
        parse_video_uri(uri)
    assert "\n" not in str(err.value)
