"""train --from MODEL --data MY_CLIPS/ (your own labels from a few clips) and the heard/seen/both field."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avgn_edge.runtime.modality import carried
from avgn_edge.runtime.result import Result

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parents[1]))


def _cli(*args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "avgn_edge", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_carried_rule():
    assert carried(0.9, 0.1) == "heard" and carried(0.1, 0.9) == "seen"
    assert carried(0.9, 0.8) == "both" and carried(0.2, 0.3) == "both"


def test_result_says_what_carried_it():
    kw = dict(labels=("a", "b", "background"), saliency=np.zeros(4), timestamps=np.arange(4.0),
              indices=np.array([0]), boxes=np.zeros((1, 4)))
    r = Result(scores=np.array([0.1, 0.8, 0.1]), heard=np.array([0.1, 0.7, 0.2]), seen=np.array([0.5, 0.2, 0.3]), **kw)
    assert r.carried == "heard" and r.to_dict()["carried"] == "heard"
    assert Result(scores=np.array([0.1, 0.8, 0.1]), **kw).carried is None     # a bundle without the modality graph


def test_event_records_carry_it():
    from avgn_edge.events.tracker import EventTracker
    from avgn_edge.sinks.records import message
    kw = dict(labels=("a", "b", "background"), saliency=np.zeros(4), indices=np.array([0]), boxes=np.zeros((1, 4)))
    tr = EventTracker(("a", "b", "background"))
    out = []
    for t in range(1, 6):
        out += tr.update(Result(scores=np.array([0.05, 0.9, 0.05]), timestamps=np.arange(4.0) + t,
                                heard=np.array([0.0, 0.2, 0.8]), seen=np.array([0.0, 0.9, 0.1]), **kw))
    new = [x for x in out if x.type == "new"]
    assert new and new[0].record()["carried"] == "seen"
    assert message(new[0])["after"]["carried"] == "seen"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from home_rigs import clip_folder
    tmp = tmp_path_factory.mktemp("few")
    data = clip_folder(tmp / "base", ["dog", "alarm", "background"], 3)
    r = _cli("train", "--preset", "home", "--data", str(data), "--out", str(tmp / "base_run"), "--steps", "0.02",
             "--batch-size", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    new = clip_folder(tmp / "mine", ["knock"], 2, seed=3)
    return tmp, tmp / "base_run", new


def test_from_keeps_the_base_labels_and_learns_the_new_one(base_run):
    import torch
    from avgn_edge.train.checkpoint import read_checkpoint
    tmp, base, new = base_run
    r = _cli("train", "--from", str(base), "--data", str(new), "--out", str(tmp / "keep"), "--steps", "0.1")
    assert r.returncode == 0, r.stderr[-2000:]
    a, ca, _ = read_checkpoint(base)
    b, cb, prov = read_checkpoint(tmp / "keep")
    assert cb.labels == ("alarm", "dog", "knock", "background") and prov["labels_mode"] == "keep"
    for name in ca.labels:                             # the base rows are exactly the base model's
        assert torch.equal(a["head.classify.weight"][ca.labels.index(name)],
                           b["head.classify.weight"][cb.labels.index(name)])
    assert not torch.equal(b["head.classify.weight"][2], torch.zeros_like(b["head.classify.weight"][2]))
    assert torch.equal(a["avtest.score.weight"], b["avtest.score.weight"])
    r = _cli("export", str(tmp / "keep"), "--out", str(tmp / "keep_bundle"), "--parity-data", str(new))
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads((tmp / "keep_bundle" / "manifest.json").read_text())
    assert manifest["config"]["labels"][2] == "knock" and "modality.onnx" in manifest["files"]


def test_from_replace_takes_the_data_labels(base_run):
    from avgn_edge.train.checkpoint import read_checkpoint
    from home_rigs import clip_folder
    tmp, base, _ = base_run
    data = clip_folder(tmp / "mine2", ["knock", "background"], 2, seed=4)
    r = _cli("train", "--from", str(base), "--data", str(data), "--labels", "replace", "--out", str(tmp / "repl"),
             "--steps", "0.05")
    assert r.returncode == 0, r.stderr[-2000:]
    _, cfg, _ = read_checkpoint(tmp / "repl")
    assert cfg.labels == ("knock", "background")


@pytest.mark.parametrize("args, says", [
    (["--labels", "replace", "--data", "synth:clips=8"], "go with --from"),
    (["--from", "no/such/model", "--data", "DATA"], "checkpoint not found"),
    (["--from", "BASE", "--data", "synth:clips=8"], "--from needs --data"),
])
def test_bad_from_input_is_one_line(base_run, args, says):
    tmp, base, new = base_run
    args = [str(new) if a == "DATA" else str(base) if a == "BASE" else a for a in args]
    r = _cli("train", "--out", str(tmp / "bad"), *args, timeout=300)
    assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr
