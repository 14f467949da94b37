"""A camera's clocks onto the monotonic one (avgn_edge/io/ptsclock.py) and its sound's ring
(streamaudio.py), with the faults a real camera has, simulated exactly: timestamps that jump or
wrap, an audio clock that drifts from the video clock, sound that drops while the picture goes on."""

import numpy as np

from avgn_edge.io.ptsclock import StreamClocks
from avgn_edge.io.streamaudio import StreamAudio


def feed(clocks, seconds, ppm=0.0, jump_at=None, jump=0.0, seed=0):
    """Video at 10 fps and 20 ms audio packets for ``seconds``; the audio clock runs ``ppm`` slow.
    Returns (true time, mapped time) of each audio packet and of each frame."""
    rng = np.random.default_rng(seed)
    audio, video = [], []
    t, t0 = 0.0, 1000.0
    while t < seconds:
        shift = jump if jump_at is not None and t >= jump_at else 0.0
        if abs(t * 10 - round(t * 10)) < 1e-9:
            arrival = t0 + t + 0.040 + rng.uniform(0, 0.02)
            video.append((t0 + t, clocks.video_time(t + shift, arrival)))
        pts = t * (1 - ppm * 1e-6) + shift
        arrival = t0 + t + 0.020 + 0.030 + rng.uniform(0, 0.02)
        audio.append((t0 + t, clocks.audio_time(pts, arrival, 0.020)))
        t = round(t + 0.020, 6)
    return np.array(audio), np.array(video)


def test_the_streams_own_alignment_is_kept():
    a, v = feed(StreamClocks(), 20.0)
    offset = np.median(v[:, 1] - v[:, 0])          # the picture's network delay, as the mapping has it
    assert 0.035 < offset < 0.045
    assert np.abs(a[-100:, 1] - a[-100:, 0] - offset).max() < 0.002     # sound where its frames are


def test_audio_clock_drift_is_measured_and_corrected():
    clocks = StreamClocks()
    a, v = feed(clocks, 90.0, ppm=500.0)
    offset = np.median(v[-50:, 1] - v[-50:, 0])
    err = a[-50:, 1] - a[-50:, 0] - offset
    assert np.abs(err).max() < 0.005, err.max()     # uncorrected: 500 ppm of 90 s = 45 ms
    st = clocks.stats(1000.0 + 90.0)
    assert 350 < st["drift_ppm"] < 650 and st["drift_ms"] > 30, st    # measured: the audio fell behind


def test_timestamps_that_jump_or_wrap_reanchor():
    for jump in (3600.0, -2 ** 32 / 90000):        # a camera reboot; an RTP timestamp wrap at 90 kHz
        clocks = StreamClocks()
        a, v = feed(clocks, 12.0, jump_at=6.0, jump=jump)
        assert clocks.stats(0)["timestamp_jumps"] >= 2          # both tracks
        assert np.abs(v[-20:, 1] - v[-20:, 0]).max() < 0.1 and np.abs(a[-20:, 1] - a[-20:, 0]).max() < 0.1


def test_sound_that_drops_is_a_counted_gap_and_a_hole():
    ring = StreamAudio(16000)
    block = np.full(320, 0.5, np.float32)
    for i in range(200):                           # 4 s of 20 ms blocks, then 1 s lost, then 2 s more
        ring.write(100.0 + 0.02 * i, block)
    for i in range(250, 350):
        ring.write(100.0 + 0.02 * i, block)
    assert ring.gaps == 1 and abs(ring.gap_seconds - 1.0) < 0.01
    w, ok = ring.window(104.5, 4000)
    assert not ok and not w.any()
    w, ok = ring.window(106.5, 4000)
    assert ok and np.allclose(w, 0.5)
    w, ok = ring.window(103.9, 4000)
    assert ok


def test_jittered_block_timestamps_make_no_holes():
    ring = StreamAudio(16000)
    rng = np.random.default_rng(1)
    for i in range(300):
        ring.write(50.0 + 0.02 * i + rng.uniform(-0.004, 0.004), np.ones(320, np.float32))
    assert ring.gaps == 0 and ring.window(55.0, 16000)[1]
