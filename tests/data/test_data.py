"""Training data from files: the layouts, segments of long recordings, the snippet cache,
augmentation and the validation split - with real MP4 files written by PyAV."""

import json

import numpy as np
import pytest

from avgn_edge.data.augment import Augment, Augmented
from avgn_edge.data.datasets import SynthDataset, open_dataset, open_training_data
from avgn_edge.data.index import read_index
from avgn_edge.data.split import split
from avgn_edge.data.synth import CLASSES, LABELS, SynthSpec, clip_video, make_clip
from avgn_edge.errors import InputError
from avgn_edge.media import write_video


def write_clip(path, spec, i, audio=True):
    frames, wave = clip_video(spec, i)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, spec.fps, wave if audio else None, spec.sample_rate)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_cfg):
    """Class folders (``background`` among them): two clips each, one of them without audio."""
    root = tmp_path_factory.mktemp("classes")
    spec = SynthSpec.for_model(tiny_cfg, seed=3)
    for i, name in enumerate(["background", LABELS[0], LABELS[1]]):
        for j in range(2):
            write_clip(root / name / f"c{j}.mp4", spec, 2 * i + j, audio=(i, j) != (1, 1))
    return root


def test_class_folders_bad_and_silent_files(folder, tiny_cfg, caplog, tmp_path):
    import shutil
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    (root / LABELS[0] / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    ds, cfg = open_training_data(str(root), tiny_cfg)
    assert cfg.labels == tuple(sorted((LABELS[0], LABELS[1]))) + ("background",) and len(ds) == 7   # background last
    samples = {s.path.split("/")[-2] + "/" + s.path.split("/")[-1]: s for s in (ds[i] for i in range(len(ds)))}
    assert len(ds.skipped) == 1 and ds.skipped[0].endswith("broken.mp4") and "skipping" in caplog.text
    silent = samples[f"{LABELS[0]}/c1.mp4"]
    assert not silent.has_audio and not silent.audio.any() and "no audio track" in caplog.text
    loud = samples[f"{LABELS[0]}/c0.mp4"]
    assert loud.has_audio and loud.audio.any() and loud.frames.shape == (4, 64, 64, 3)
    assert samples["background/c0.mp4"].label == 2


def test_index_mistakes_are_input_errors(folder, tiny_cfg, tmp_path):
    one = tmp_path / "one"
    (one / "knock").mkdir(parents=True)
    (one / "knock" / "a.mp4").write_bytes((folder / "background" / "c0.mp4").read_bytes())
    with pytest.raises(InputError, match="has one class .knock.: training needs at least two"):
        open_training_data(str(one), tiny_cfg)
    lst = tmp_path / "list.csv"
    lst.write_text(f"path,label\n{folder}/background/c0.mp4,a\nmissing1.mp4,b\nmissing2.mp4,b\n")
    with pytest.raises(InputError, match="names 2 file.s. that do not exist"):
        read_index(lst)
    lst.write_text(f"path,label,start,end\n{folder}/background/c0.mp4,a,3,1\n")
    with pytest.raises(InputError, match="line 2: a segment needs 0 <= start < end"):
        read_index(lst)
    (one / LABELS[0]).mkdir()
    (one / LABELS[0] / "a.mp4").write_bytes((folder / "background" / "c0.mp4").read_bytes())
    with pytest.raises(InputError, match="label.s. the model does not know: knock"):
        open_dataset(str(one), tiny_cfg)                       # the tiny model knows the synth labels only
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no videos found"):
        read_index(tmp_path / "empty")


def test_manifests_and_segments_of_a_long_recording(tmp_path, tiny_cfg):
    """Two clips back to back in one file; a CSV (& delimiter, no header), a JSON list and AVE's
    Annotations.txt name them as segments; each segment decodes to its own clip's snippets."""
    spec = SynthSpec.for_model(tiny_cfg, seed=4)
    parts = [clip_video(spec, i) for i in range(2)]
    write_video(tmp_path / "rec.mp4", parts[0][0] + parts[1][0], spec.fps, np.concatenate([parts[0][1], parts[1][1]]),
                spec.sample_rate)
    length = spec.num_snippets * spec.snippet_period
    labels = [CLASSES[make_clip(spec, i).label] for i in range(2)]
    (tmp_path / "ave.txt").write_text(f"rec.mp4&{labels[0]}&0&{length}\nrec.mp4&{labels[1]}&{length}&{2 * length}\n")
    (tmp_path / "list.json").write_text(json.dumps([{"path": "rec.mp4", "label": labels[i], "start": i * length,
                                                     "end": (i + 1) * length} for i in range(2)]))
    (tmp_path / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "".join(
        f"{labels[i]}&rec&good&{i * length:g}&{(i + 1) * length:g}\n" for i in range(2)))      # AVE's own file
    for name in ("ave.txt", "list.json", "Annotations.txt"):
        items = read_index(tmp_path / name)
        assert [(i.start, i.end) for i in items] == [(0.0, length), (length, 2 * length)]
        ds = open_dataset(str(tmp_path / name), tiny_cfg)
        for i in range(2):
            s, ref = ds[i], make_clip(spec, i)
            assert s.label == ref.label
            err = np.abs(s.frames.astype(float) - ref.frames).mean()
            other = np.abs(s.frames.astype(float) - make_clip(spec, 1 - i).frames).mean()
            assert err < 9 and other > 2.5 * err, (name, i, err, other)     # H.264 error only (~7), the right clip
            assert np.corrcoef(s.audio.ravel(), ref.audio.ravel())[0, 1] > 0.9
        assert ds.groups()[0][0] == ds.groups()[1][0]                        # one recording: one group


def test_cache_serves_what_decoding_gives(folder, tmp_path, tiny_cfg, monkeypatch):
    from avgn_edge.data.cache import BAD, EMPTY, SILENT, fill
    import shutil
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    (root / "background" / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    plain, cfg = open_training_data(str(root), tiny_cfg, candidates=3)
    cached, _ = open_training_data(str(root), tiny_cfg, cache=str(tmp_path / "cache"), candidates=3)
    assert (cached.cache.state() == EMPTY).all()
    report = fill(cached, workers=2, progress=False)                # decoded in DataLoader workers
    assert report["decoded"] == 7 and report["undecodable"] == 1 and report["no_audio"] == 1
    again, _ = open_training_data(str(root), tiny_cfg, cache=str(tmp_path / "cache"), candidates=3)
    assert again.cache.dir == cached.cache.dir and (again.cache.state() != EMPTY).all()
    monkeypatch.setattr(again, "decode", lambda k: pytest.fail("decoded although cached"))
    for k in range(len(plain)):
        a, b = plain.segments(k), again.segments(k)
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert again.cache.state()[[i for i, it in enumerate(again.items) if it.path.name == "broken.mp4"]] == BAD
    assert (again.cache.state() == SILENT).sum() == 1
    # a touched file, or another candidate count, gets a cache of its own
    (root / LABELS[1] / "c0.mp4").touch()
    import os
    os.utime(root / LABELS[1] / "c0.mp4", ns=(1, 1))
    assert open_training_data(str(root), tiny_cfg, cache=str(tmp_path / "cache"), candidates=3)[0].cache.dir != cached.cache.dir
    assert open_training_data(str(root), tiny_cfg, cache=str(tmp_path / "cache"))[0].cache.dir != cached.cache.dir


def test_cache_too_large_for_the_disk_is_refused_before_writing(folder, tmp_path, tiny_cfg, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(InputError, match="the snippet cache needs .* GiB"):
        open_training_data(str(folder), tiny_cfg, cache=str(tmp_path / "cache"))
    assert not any((tmp_path / "cache").iterdir())


def test_augmentation(folder, tiny_cfg):
    assert Augment.parse(None) is None and Augment.parse("off") is None
    full = Augment.parse("default")
    assert full.frame and full.crop == 0.66 and full.flip == 0.5 and full.candidates == 3
    assert Augment.parse("flip,gain=3") == Augment(flip=0.5, gain=3.0)
    for bad in ("spin", "crop=0.1", "gain=x"):
        with pytest.raises(InputError):
            Augment.parse(bad)
    s = SynthDataset(SynthSpec.for_model(tiny_cfg, seed=0, clips=4))[1]
    flipped = Augment(flip=1.0).apply(s, np.random.default_rng(0))
    assert np.array_equal(flipped.frames, s.frames[:, :, ::-1])
    ev = s.event_snippets[0]
    assert np.allclose(flipped.boxes[ev], [64 - s.boxes[ev][2], s.boxes[ev][1], 64 - s.boxes[ev][0], s.boxes[ev][3]])
    cropped = Augment(crop=0.66).apply(s, np.random.default_rng(1))
    assert cropped.frames.shape == s.frames.shape and cropped.frames.dtype == np.uint8
    loud = Augment(gain=6, noise=0.01).apply(s, np.random.default_rng(2))
    assert loud.audio.dtype == np.float32 and not np.allclose(loud.audio, s.audio)
    again = Augment(gain=6, noise=0.01).apply(s, np.random.default_rng(2))
    assert np.array_equal(loud.audio, again.audio)                             # the generator decides everything
    # random frame per segment: another of the segment's candidates, the audio moving with it
    clips, _ = open_training_data(str(folder), tiny_cfg, candidates=3)
    aug = Augmented(clips, Augment(frame=True))
    test = aug[0]
    views = [aug.train_view(0, np.random.default_rng(k)) for k in range(6)]
    assert any(not np.array_equal(v.frames, test.frames) for v in views)
    assert all(v.frames.shape == test.frames.shape for v in views)


def test_augmentation_is_off_for_in_memory_data_unless_asked(tiny_cfg):
    import torch
    from avgn_edge.train.batches import TorchClips
    ds = SynthDataset(SynthSpec.for_model(tiny_cfg, seed=0, clips=4))
    a, b = TorchClips(ds, seed=5, train=True)[2], TorchClips(ds, seed=5, train=False)[2]
    assert all(torch.equal(a[k], b[k]) for k in ("frames", "audio", "label"))
    c = TorchClips(Augmented(ds, Augment(flip=1.0)), seed=5, train=True)[2]
    assert torch.equal(c["frames"], a["frames"].flip(2))


def test_validation_split_is_seeded_stratified_and_keeps_recordings_whole(folder, tiny_cfg):
    ds, _ = open_training_data(str(folder), tiny_cfg)
    train, val = split(ds, 0.5, seed=0)
    assert len(train) + len(val) == len(ds) and not set(train.indices) & set(val.indices)
    assert sorted({ds.items[i].label for i in val.indices}) == sorted(ds.labels)   # every class validated
    assert split(ds, 0.5, seed=0)[1].indices == val.indices
    assert val.labels == ds.labels and val[0].label == ds[val.indices[0]].label

    class Segments:           # three labelled segments of each of two recordings
        def __len__(self):
            return 6

        def groups(self):
            return [("rec0", "a"), ("rec0", "b"), ("rec0", "a"), ("rec1", "a"), ("rec1", "b"), ("rec1", "b")]
    tr, va = split(Segments(), 0.5, seed=1)
    assert sorted(va.indices) in ([0, 1, 2], [3, 4, 5]) and len(tr) == 3
    with pytest.raises(InputError, match="between 0 and 1"):
        split(ds, 1.5, seed=0)
