"""Training, checkpoints and evaluation, end to end on the tiny preset."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.errors import BundleError, InputError  # noqa: E402
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
    assert r["top1"] > max(r["baselines"]["glance_only"]["top1"], r["baselines"]["audio_only"]["top1"]), r
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


def test_video_folder_dataset(tmp_path, tiny_cfg, caplog):
    """One sub-folder per class: a file without audio gives silence and a flag, a corrupt
    file is skipped with a warning and counted."""
    from avgn_edge.data.datasets import VideoFolder
    from avgn_edge.data.synth import LABELS, SynthSpec, clip_video
    from avgn_edge.media import write_video
    spec = SynthSpec.for_model(tiny_cfg, seed=3)
    for i, name in enumerate(["a.mp4", "b.mp4"]):
        frames, audio = clip_video(spec, i)
        folder = tmp_path / LABELS[i]
        folder.mkdir(exist_ok=True)
        write_video(folder / name, frames, spec.fps, audio if i == 0 else None, spec.sample_rate)
    (tmp_path / LABELS[0] / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    ds = VideoFolder(tmp_path, tiny_cfg)
    assert len(ds) == 3 and ds.labels == tuple(sorted((LABELS[0], LABELS[1])))   # class folders, sorted
    samples = [ds[i] for i in range(3)]
    assert len(ds.skipped) == 1 and ds.skipped[0].endswith("broken.mp4")
    by_path = {s.path.split("/")[-1]: s for s in samples}
    assert by_path["a.mp4"].has_audio and by_path["a.mp4"].audio.any()
    assert not by_path["b.mp4"].has_audio and not by_path["b.mp4"].audio.any()
    assert by_path["a.mp4"].frames.shape == (tiny_cfg.num_snippets, 64, 64, 3)
    assert "skipping" in caplog.text


def test_a_background_folder_is_the_last_label_and_without_one_the_user_is_told_once(tmp_path, tiny_cfg, caplog):
    from avgn_edge.data.datasets import VideoFolder, open_dataset
    from avgn_edge.data.synth import SynthSpec, clip_video
    from avgn_edge.media import write_video
    spec = SynthSpec.for_model(tiny_cfg, seed=3)
    for name in ("zebra-call", "background", "alarm"):
        (tmp_path / "with" / name).mkdir(parents=True)
        frames, audio = clip_video(spec, len(name))
        write_video(tmp_path / "with" / name / "a.mp4", frames, spec.fps, audio, spec.sample_rate)
    ds = VideoFolder(tmp_path / "with", tiny_cfg)
    assert ds.labels == ("alarm", "zebra-call", "background")
    assert "background" not in caplog.text
    (tmp_path / "with" / "background").rename(tmp_path / "without")
    caplog.clear()
    for _ in range(3):
        VideoFolder(tmp_path / "with", tiny_cfg)
    assert caplog.text.count("events will fire on anything") == 1
    cfg12 = tiny_cfg.replace(labels=tiny_cfg.labels[:-1])        # a model without the background outcome
    with pytest.raises(InputError, match="no background label"):
        open_dataset("synth:seed=0,clips=8,background=0.2", cfg12)
    assert open_dataset("synth:seed=0,clips=8", cfg12).labels == tiny_cfg.labels[:-1]


def test_only_event_clips_train_the_evidence_and_backgrounds_teacher_picks_hard_negatives(tiny_cfg):
    from avgn_edge.model import build_model
    from avgn_edge.train.recipe import _evidence_loss, teacher
    bg = tiny_cfg.background_index
    z = torch.zeros(2, 3, tiny_cfg.num_classes, 2, 2, requires_grad=True)
    loss = _evidence_loss(z, torch.tensor([0, bg]), bg)
    loss.backward()
    assert z.grad[1].abs().sum() == 0 and z.grad[0].abs().sum() > 0     # the background clip trains nothing
    assert z.grad[0, :, bg].abs().sum() == 0                            # nor does the background channel
    assert _evidence_loss(z, torch.tensor([bg, bg]), bg).item() == 0.0
    assert torch.isclose(_evidence_loss(z, torch.tensor([0, bg]), bg), torch.log(torch.tensor(bg * 1.0)))
    torch.manual_seed(0)
    m = build_model(tiny_cfg).eval()
    frames = torch.randint(0, 255, (2, tiny_cfg.num_snippets, tiny_cfg.frame_size, tiny_cfg.frame_size, 3),
                           dtype=torch.uint8)
    y = torch.tensor([0, bg])
    frame_ev, cell_ev, dvec = teacher(m, frames, y, 1.0)
    assert dvec.shape == (2, tiny_cfg.num_snippets, m.local.dim)
    with torch.no_grad():
        dz = m.evidence(m.dense_maps(m.full_input(frames)).flatten(0, 1))
        strongest = torch.cat([dz[:, :bg], dz[:, bg + 1:]], 1).amax(1).view(2, tiny_cfg.num_snippets, -1)
    assert torch.allclose(frame_ev[1], strongest[1].amax(-1), atol=1e-5)     # background: any event's evidence
    assert not torch.allclose(frame_ev[0], strongest[0].amax(-1), atol=1e-5)  # an event: its own class only


def test_imagenet_initialisation_from_local_torchvision_files(tmp_path, tiny_cfg):
    from torchvision.models import mobilenet_v2, resnet18
    from avgn_edge.model.pretrained import imagenet_state
    cfg = tiny_cfg.replace(local_depth=18, local_stages=2)
    torch.save(resnet18().state_dict(), tmp_path / "resnet18-f37072fd.pth")
    state = imagenet_state(cfg, tmp_path)
    assert "local.body.0.weight" in state and "local.body.4.0.conv1.weight" in state     # conv1, layer1
    assert not any(k.startswith("local.body.6.") for k in state)                         # layer3: not used
    torch.save(mobilenet_v2().state_dict(), tmp_path / "mobilenet_v2-b0353104.pth")
    from avgn_edge.config import get_preset
    paper = imagenet_state(get_preset("paper"), tmp_path)           # MobileNetV2 1.0 glance fits
    assert "glance.features.0.0.weight" in paper
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no torchvision weights"):
        imagenet_state(tiny_cfg, empty)


def test_an_interrupted_run_resumes_mid_stage(tmp_path, tiny_cfg):
    from avgn_edge.train.loop import train
    from avgn_edge.train.recipe import Recipe

    class Dies:
        """The real dataset, until the power goes out after ``left`` clips."""
        def __init__(self, inner, left):
            self.inner, self.left = inner, left

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            self.left -= 1
            if self.left < 0:
                raise KeyboardInterrupt
            return self.inner[i]
    ds = open_dataset("synth:seed=0,clips=64", tiny_cfg)
    r = Recipe(batch_size=2, warmup_steps=6, glance_steps=2, finetune_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg, Dies(ds, 9), tmp_path, r, progress=False, workers=0, checkpoint_every=2)
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert (state["stage"], state["step"]) == (0, 4)          # 4 warm-up steps were saved
    train(tiny_cfg, ds, tmp_path, r, progress=False, workers=0, checkpoint_every=2)
    assert torch.load(tmp_path / "train_state.pt", weights_only=True)["stage"] == 3
    assert (tmp_path / "history.jsonl").is_file()             # written with each checkpoint
