"""Media as users cut it, and labels that survive a change of model geometry (issue #20)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from avgn_edge.media import read_segments

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")


def _ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, timeout=120)


def _index(img) -> int:
    """The frame number written as 10 bits, one 8-pixel block per bit."""
    return sum(1 << b for b in range(10) if img[4:12, b * 8 + 2:b * 8 + 6, 1].mean() > 128)


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """10 s at 30 fps, each frame showing its number; H.264 with 3 B-frames and AAC, then a
    stream-copy cut at 1.517 s (an edit list; packets before the cut are kept but discarded)."""
    d = tmp_path_factory.mktemp("numbered")
    _ffmpeg("-f", "lavfi", "-i", "color=black:size=80x16:rate=30,geq=lum='if(bitand(N\\,pow(2\\,floor(X/8)))\\,235\\,16)'"
            ":cb=128:cr=128", "-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", 10, "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-crf", 10, "-bf", 3, "-g", 60, "-c:a", "aac", "-ac", 2, d / "base.mp4")
    _ffmpeg("-ss", 1.517, "-i", d / "base.mp4", "-t", 8, "-c", "copy", d / "cut.mp4")
    return d


@needs_ffmpeg
@pytest.mark.parametrize("name", ["base.mp4", "cut.mp4"])
@pytest.mark.parametrize("candidates", [1, 3])
def test_stream_copy_cut_gives_the_frames_due_at_each_segment_end(numbered, name, candidates):
    import av
    with av.open(str(numbered / name)) as c:
        first = _index(next(c.decode(video=0)).to_ndarray(format="rgb24"))
    s = read_segments(numbered / name, 8, 16000, 0.25, candidates)
    assert s.frames.shape[:2] == (8, candidates) and s.has_audio
    got = np.array([[_index(f) - first for f in row] for row in s.frames])
    # the last frame strictly before each (sub-)segment end, on the file's own clock
    want = np.ceil(s.times * 30 - 0.25).astype(int) - 1
    assert np.abs(got - want).max() <= 1, (got, want)
    assert s.times[-1, -1] == pytest.approx(8.1 if name == "cut.mp4" else 10.0, abs=0.05)
    assert (np.diff(got.ravel()) > 0).all()
    assert np.abs(s.audio[:, -1]).max() > 0.1          # the tone, on the same clock


@needs_ffmpeg
def test_part_of_a_cut_recording(numbered):
    s = read_segments(numbered / "cut.mp4", 4, 16000, 0.25, start=2.0, end=6.0)
    assert s.times[:, 0] == pytest.approx([1, 2, 3, 4], abs=0.02)


@pytest.fixture(scope="module")
def t8_folder(tmp_path_factory):
    """Clips written for the synth preset (T=8, 128 px), as ``avgn-edge synth`` writes them."""
    from argparse import Namespace

    from avgn_edge.cli import cmd_synth
    out = tmp_path_factory.mktemp("t8")
    assert cmd_synth.run(Namespace(out=str(out), clips=6, seed=5, distractors=0.5, noise=0.25,
                                   background=0.25, preset="synth")) == 0
    return out


def _events(folder, cfg):
    from avgn_edge.data.datasets import open_training_data
    from avgn_edge.train.batches import TorchClips
    ds, cfg = open_training_data(str(folder), cfg)
    assert ds.has_ground_truth
    clips = TorchClips(ds)
    return [clips[i] for i in range(len(ds))]


def test_a_folder_for_t8_gives_events_and_boxes_to_a_t4_model(t8_folder, tiny_cfg):
    pytest.importorskip("torch")
    entries = json.loads((t8_folder / "labels.json").read_text())
    got = _events(t8_folder, tiny_cfg)                   # T=4, 64 px: an IndexError before
    for e, b in zip(entries, got):
        assert b["events"].shape == (4,) and b["boxes"].shape == (4, 4)
        # snippet j of 4 ends at 0.5 (j + 1) s; it shows the event when that end is in (start, end]
        want = [any(s["start"] < 0.5 * (j + 1) <= s["end"] for s in e["events"]) for j in range(4)]
        assert b["events"].numpy().tolist() == want
        on = b["events"].numpy()
        if on.any():
            box = np.asarray(e["boxes"][e["event_snippets"][0]]) / 2          # 128 px -> 64 px
            assert np.allclose(b["boxes"].numpy()[on], box, atol=0.01)
        assert np.isnan(b["boxes"].numpy()[~on]).all()


def test_old_labels_json_still_reads(t8_folder, tiny_cfg, tmp_path):
    pytest.importorskip("torch")
    from avgn_edge.config import get_preset
    new = _events(t8_folder, tiny_cfg)
    entries = json.loads((t8_folder / "labels.json").read_text())
    old = tmp_path / "old"
    shutil.copytree(t8_folder, old)
    # the form before times: snippet indices, pixel boxes, snippet_times
    (old / "labels.json").write_text(json.dumps([{k: v for k, v in e.items() if k not in ("events", "duration")}
                                                 for e in entries]))
    for a, b in zip(new, _events(old, tiny_cfg)):
        assert np.array_equal(a["events"], b["events"]) and np.allclose(a["boxes"], b["boxes"], equal_nan=True)
    # without snippet_times only a model of the writer's T gets the ground truth
    (old / "labels.json").write_text(json.dumps([{k: v for k, v in e.items() if k in ("file", "label",
                                                  "event_snippets", "boxes")} for e in entries]))
    synth = get_preset("synth")
    for e, b in zip(entries, _events(old, synth)):
        assert np.flatnonzero(b["events"].numpy()).tolist() == e["event_snippets"]
    from avgn_edge.data.datasets import open_training_data
    assert not open_training_data(str(old), tiny_cfg)[0].has_ground_truth


def test_csv_segments_are_seconds_for_any_t(t8_folder, tiny_cfg, tmp_path):
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_training_data
    entries = json.loads((t8_folder / "labels.json").read_text())
    rows = [f"{t8_folder / e['file']},{e['label']},{s['start']},{s['end']}" for e in entries for s in e["events"]]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    for cfg in (tiny_cfg, get_preset("synth")):
        ds, cfg = open_training_data(str(tmp_path / "list.csv"), cfg)
        for k, it in enumerate(ds.items):
            frames, audio, has_audio, times = ds.segments(k)
            assert frames.shape[0] == cfg.num_snippets
            assert times[-1] == pytest.approx(it.end - it.start, abs=0.05)


@needs_ffmpeg
def test_phone_rotation_is_applied(numbered, tmp_path):
    _ffmpeg("-i", numbered / "base.mp4", "-c", "copy", "-metadata:s:v:0", "rotate=90", tmp_path / "phone.mp4")
    plain = read_segments(numbered / "base.mp4", 4, 16000, 0.25)
    turned = read_segments(tmp_path / "phone.mp4", 4, 16000, 0.25)
    assert plain.frames.shape[2:4] == (16, 80) and turned.frames.shape[2:4] == (80, 16)
    assert np.array_equal(turned.frames[:, 0], np.rot90(plain.frames[:, 0], 1, axes=(1, 2)))
    # ffmpeg's own player turns it the same way
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", tmp_path / "phone.mp4", "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    import av
    with av.open(str(tmp_path / "phone.mp4")) as c:
        from avgn_edge.media import rgb
        first = rgb(next(c.decode(video=0)))
    assert np.abs(first.astype(int) - np.frombuffer(raw, np.uint8).reshape(80, 16, 3)).mean() < 1


def test_empty_and_foreign_files_are_one_line(tmp_path):
    from avgn_edge.errors import SourceError
    from avgn_edge.media import list_videos
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video\n")
    (tmp_path / "race.ogv").write_bytes(b"x")
    for name, why in [("empty.mp4", "is empty"), ("notes.mp4", "Invalid data found when processing input$")]:
        with pytest.raises(SourceError) as e:
            read_segments(tmp_path / name, 4, 16000, 0.25)
        assert len(str(e.value).splitlines()) == 1 and "Errno" not in str(e.value)
        import re
        assert re.search(why, str(e.value)), str(e.value)
    assert "race.ogv" in [p.name for p in list_videos(tmp_path)]


@pytest.mark.slow
def test_eval_counts_an_undecodable_file_nowhere(t8_folder, tmp_path):
    """videos.py serves the next good clip in a bad file's place (a DataLoader never sees the
    failure); evaluation must not count that clip twice."""
    pytest.importorskip("torch")
    from avgn_edge.data.datasets import open_training_data
    from avgn_edge.model.avgn import AVGN
    from avgn_edge.train.evaluate import evaluate
    root = tmp_path / "data"
    shutil.copytree(t8_folder, root)
    entries = json.loads((root / "labels.json").read_text())
    (root / "broken.mp4").write_text("not a video\n")
    (root / "labels.json").write_text(json.dumps(entries + [{**entries[0], "file": "broken.mp4"}]))
    from avgn_edge.config import get_preset
    ds, cfg = open_training_data(str(root), get_preset("synth"))       # the folder's own T
    r = evaluate(AVGN(cfg).eval(), ds, batch_size=4, progress=False, baselines=True, workers=0, costs=False)
    assert r["clips"] == len(entries) and ds.skipped == [str(root / "broken.mp4")]
