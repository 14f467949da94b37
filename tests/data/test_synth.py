"""The synthetic benchmark: determinism, ground truth, and the properties it is built on."""

import numpy as np
import pytest

from avgn_edge.data import synth
from avgn_edge.data.synth import LABELS, PATTERNS, SynthSpec, make_clip, parse_knobs
from avgn_edge.errors import InputError


def test_clips_are_deterministic_and_distinct():
    sp = SynthSpec(clips=10)
    a, b, c = make_clip(sp, 3), make_clip(sp, 3), make_clip(sp, 4)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames, c.frames)
    assert not np.array_equal(make_clip(SynthSpec(seed=1), 3).frames, a.frames)


def test_shapes_and_ground_truth():
    sp = SynthSpec(background=0.0)
    for i in range(30):
        c = make_clip(sp, i)
        assert c.frames.shape == (8, 128, 128, 3) and c.frames.dtype == np.uint8
        assert c.audio.shape == (8, 4000) and c.audio.dtype == np.float32
        assert 0 <= c.label < len(LABELS)
        ev = c.event_snippets
        assert sp.min_event <= len(ev) <= sp.min_event + 1 and np.all(np.diff(ev) == 1)
        inside = ~np.isnan(c.boxes[:, 0])
        assert np.array_equal(np.nonzero(inside)[0], ev)
        x0, y0, x1, y1 = c.boxes[ev[0]]
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        assert max(x1 - x0, y1 - y0) <= sp.patch_size        # a perfect patch can hold it


def test_event_object_carries_the_pattern_and_the_sound_its_family():
    sp = SynthSpec(noise=0.0, distractors=0.0, background=0.0)
    c = make_clip(sp, 7)
    tl = c.timeline
    ev = tl.events[0]
    x0, y0, x1, y1 = ev.box
    frame = c.frames[ev.start].astype(float)
    patch = frame[y0:y1, x0:x1].mean(axis=2)
    expected = synth.texture(ev.pattern, ev.box)
    corr = np.corrcoef(patch.ravel(), expected.ravel())[0, 1]
    assert corr > 0.95
    # the event's sound is the family's: its (smoothed power) spectrum matches that family's sound best
    wave = c.audio[ev.start]

    def spectrum(x):
        return np.convolve(np.abs(np.fft.rfft(x)) ** 2, np.ones(9) / 9, mode="same")

    def similarity(family):
        ref = synth.sound(family, len(wave), sp.sample_rate, np.random.default_rng(0))
        return np.corrcoef(spectrum(wave), spectrum(ref))[0, 1]
    same = similarity(synth.FAMILIES[ev.family])
    others = [similarity(f) for f in synth.FAMILIES if f != synth.FAMILIES[ev.family]]
    assert same > max(others)


def test_pattern_invisible_in_the_glance_view():
    """The class pattern averages away under the 4x antialiased glance downscale."""
    torch = pytest.importorskip("torch")
    from avgn_edge.model.views import glance_view
    sp = SynthSpec(noise=0.0, distractors=0.0, background=0.0)
    for i in range(5):
        c = make_clip(sp, i)
        ev = c.timeline.events[0]
        textured = c.timeline.render_segment(ev.start, 0)
        ev_obj = c.timeline.segments[ev.start].objects[0]
        ev_obj.pattern = -1
        flat = c.timeline.render_segment(ev.start, 0)
        full_diff = np.abs(textured.astype(float) - flat).max()
        g = lambda x: glance_view(torch.from_numpy(x)[None], 32, (0, 0, 0), (1 / 255,) * 3)[0]
        glance_diff = (g(textured) - g(flat)).abs().max().item()
        assert full_diff > 30 and glance_diff < 0.05 * full_diff


def test_no_distractor_snippet_pairs_a_family_sound_with_its_colour():
    sp = SynthSpec(distractors=1.0)
    for i in range(40):
        tl = make_clip(sp, i).timeline
        for seg in tl.segments:
            if seg.event >= 0:
                continue
            sounds = {s.kind for s in seg.sounds}
            for obj in seg.objects:
                fam = int(np.argmin(np.abs(synth.FAMILY_COLORS - obj.color).sum(1)))
                assert synth.FAMILIES[fam] not in sounds


def test_knobs_parse_and_validate():
    assert parse_knobs("seed=3,clips=500,distractors=0.2,noise=0.1,background=0.3") == \
        {"seed": 3, "clips": 500, "distractors": 0.2, "noise": 0.1, "background": 0.3}
    assert parse_knobs("noise=0.05-0.65,distractors=0.2-0.9") == {"noise": (0.05, 0.65), "distractors": (0.2, 0.9)}
    for bad in ("seed=3,colour=red", "clips=many", "noise=0.1-x"):
        with pytest.raises(InputError):
            parse_knobs(bad)
    for bad in ({"noise": 2.0}, {"noise": (0.6, 0.1)}, {"distractors": (0.1, 1.5)}, {"background": 1.2}):
        with pytest.raises(InputError):
            SynthSpec(**bad)


def test_background_clips_hold_no_event_at_the_rate_asked():
    sp = SynthSpec(clips=400, background=0.3, distractors=1.0)
    share = np.mean([not synth.clip_timeline(sp, i).events for i in range(400)])
    assert 0.24 <= share <= 0.36
    clips = [make_clip(sp, i) for i in range(40)]
    quiet = [c for c in clips if c.label == len(LABELS)]
    assert quiet
    for c in quiet:
        assert len(c.event_snippets) == 0 and np.isnan(c.boxes).all() and not c.timeline.events
        for seg in c.timeline.segments:                          # distractors never pair colour and sound
            sounds = {s.kind for s in seg.sounds}
            assert all(o.pattern < 0 for o in seg.objects)
            for obj in seg.objects:
                assert synth.FAMILIES[int(np.argmin(np.abs(synth.FAMILY_COLORS - obj.color).sum(1)))] not in sounds
    # an event clip is the same clip whatever the background rate (explicit seeds reproduce)
    none = SynthSpec(clips=400, background=0.0, distractors=1.0)
    for i, c in enumerate(clips):
        if c.label != len(LABELS):
            assert np.array_equal(c.frames, make_clip(none, i).frames)
    assert np.array_equal(make_clip(sp, 7).audio, make_clip(sp, 7).audio)
    assert synth.CLASSES == LABELS + ("background",)


def test_ranged_levels_are_drawn_per_clip():
    sp = SynthSpec(noise=(0.05, 0.65), distractors=(0.2, 0.9))
    levels = [(synth.clip_timeline(sp, i).spec.noise, synth.clip_timeline(sp, i).spec.distractors) for i in range(60)]
    noise, dis = np.array(levels).T
    assert noise.min() >= 0.05 and noise.max() <= 0.65 and noise.std() > 0.1
    assert dis.min() >= 0.2 and dis.max() <= 0.9
    assert levels[3] == (synth.clip_timeline(sp, 3).spec.noise, synth.clip_timeline(sp, 3).spec.distractors)


def test_the_stream_is_quiet_most_of_the_time_and_reproducible():
    from avgn_edge.data.stream import StreamTimeline
    for quiet in (0.9, 0.7):
        st = StreamTimeline(SynthSpec(seed=4), quiet=quiet)
        hour = st.events(3600.0)
        busy = sum(e["t_end"] - e["t_start"] for e in hour) / 3600.0
        assert abs((1 - busy) - quiet) < 0.03, (quiet, busy)
        assert all(b["t_start"] >= a["t_end"] for a, b in zip(hour, hour[1:]))
    assert StreamTimeline(SynthSpec(seed=4)).quiet == 0.9                  # the default: mostly quiet
    a, b = StreamTimeline(SynthSpec(seed=5)), StreamTimeline(SynthSpec(seed=5))
    sa, sb = list(a.snippets(40)), list(b.snippets(40))
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) and x[2] == y[2] for x, y in zip(sa, sb))
    assert [round(s[2], 6) for s in sa[:3]] == [0.25, 0.5, 0.75]            # ticks at segment ends
    assert a.events(10.0) == b.events(10.0)
    assert not np.array_equal(sa[5][0], list(StreamTimeline(SynthSpec(seed=6)).snippets(6))[5][0])
    shifted = [s[2] for s in StreamTimeline(SynthSpec(seed=5)).snippets(3, phase=0.5)]
    assert shifted == pytest.approx([4 / 12, 7 / 12, 10 / 12], abs=1e-9)                 # the newest frame due
    with pytest.raises(InputError):
        StreamTimeline(SynthSpec(), quiet=1.0)
    with pytest.raises(InputError):
        StreamTimeline(SynthSpec(), quiet=0.5, gap=(1, 2))
    with pytest.raises(InputError):
        StreamTimeline(SynthSpec(noise=(0.1, 0.2)))


def test_labels_are_family_pattern_pairs():
    assert len(LABELS) == 4 * len(PATTERNS) and LABELS[0] == "bell-vstripes"


def test_geometry_any_gives_clips_to_a_model_of_any_sizes():
    """Speed measurements of e.g. the paper preset (frames = glance size) need clips; by default the
    benchmark's geometry is enforced, with the way out in the hint."""
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    cfg = get_preset("tiny").replace(glance_size=64)
    with pytest.raises(InputError, match="frame_size = 4 x glance_size") as err:
        open_dataset("synth:seed=1,clips=1", cfg)
    assert "geometry=any" in err.value.hint
    clip = open_dataset("synth:seed=1,clips=1,geometry=any", cfg)[0]
    assert clip.frames.shape == (cfg.num_snippets, 64, 64, 3)
    with pytest.raises(InputError, match="strict or any"):
        parse_knobs("geometry=loose")
