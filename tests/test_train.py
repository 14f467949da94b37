"""Training, checkpoints and evaluation, end to end on the tiny preset."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.errors import BundleError  # noqa: E402
from avgn_edge.train.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint  # noqa: E402
from avgn_edge.train.evaluate import average_precision, evaluate, patch_hits  # noqa: E402


def test_checkpoint_round_trip(tmp_path, tiny_cfg):
    from avgn_edge.model import build_model
    torch.manual_seed(3)
    m = build_model(tiny_cfg).eval()
    p = save_checkpoint(tmp_path / "m.safetensors", m, {"note": "x"})
    m2, prov = load_checkpoint(p)
    assert prov == {"note": "x"} and m2.cfg == tiny_cfg
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    # the format holds no pickle: the file starts with a JSON header length + JSON
    raw = p.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"]["format"].startswith("avgn-edge-checkpoint")


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        read_checkpoint(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(BundleError, match="not a readable"):
        read_checkpoint(bad)


def test_tiny_end_to_end_train_and_eval_beats_chance(tiny_run, tiny_cfg):
    model, prov = load_checkpoint(tiny_run)
    assert prov["train_minutes"] > 0
    r = evaluate(model, open_dataset("synth:seed=1000,clips=96", tiny_cfg), batch_size=32, progress=False, workers=0)
    chance = 1 / tiny_cfg.num_classes
    assert r["top1"] > 2 * chance, r
    assert set(r["baselines"]) == {"dense", "glance_only", "audio_only", "random_frames", "random_patches"}
    assert r["gflops_per_clip"] < r["baselines"]["dense"]["gflops_per_clip"]
    assert 0.0 <= r["saliency_precision_at_k"] <= 1.0 and 0.0 <= r["patch_hit_rate"] <= 1.0


def test_resume_continues_from_the_saved_step(tmp_path, tiny_cfg):
    from avgn_edge.train.loop import train
    from avgn_edge.train.recipe import Recipe
    ds = open_dataset("synth:seed=0,clips=64", tiny_cfg)
    r = Recipe(batch_size=4, warmup_steps=4, glance_steps=2, finetune_steps=2)
    train(tiny_cfg, ds, tmp_path, r, progress=False, workers=0, checkpoint_every=2)
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["stage"] == 3                      # all three stages done
    before = read_checkpoint(tmp_path / "model.safetensors")[0]
    train(tiny_cfg, ds, tmp_path, r, progress=False, workers=0)      # nothing left: weights unchanged
    after = read_checkpoint(tmp_path / "model.safetensors")[0]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_metrics():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert average_precision(scores, np.array([0, 1, 0, 1]), 2) == pytest.approx(1.0)
    assert average_precision(scores, np.array([1, 0, 1, 0]), 2) < 0.6
    boxes = torch.tensor([[40.0, 40.0, 56.0, 56.0]] * 3)
    centres = torch.tensor([[48 / 128, 48 / 128], [0.1, 0.1], [60 / 128, 48 / 128]])
    assert patch_hits(centres, boxes, 32, 128).tolist() == [True, False, True]
