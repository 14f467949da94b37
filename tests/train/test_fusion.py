"""Late fusion of the audio-only, glance-only and AV heads (model/fusion.py), fitted on held-out clips
during validation, and modality dropout (train/recipe.py): the fix for `home`'s AV head falling 13
points below its own audio-only head on unseen packages."""

import json

import pytest

torch = pytest.importorskip("torch")

from avgn_edge.model import build_model  # noqa: E402
from avgn_edge.model.fusion import DEFAULT, fit  # noqa: E402
from avgn_edge.train.recipe import drop_modalities  # noqa: E402


def _inputs(model, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    t, k = cfg.num_snippets, cfg.top_k
    gvec = torch.randn(b, t, model.glance.dim, generator=g)
    avec = torch.randn(b, t, model.audio.dim, generator=g).relu()
    lvec = torch.randn(b, k, model.local.dim, generator=g)
    sal = torch.randn(b, t, generator=g)
    return gvec, avec, lvec, sal, torch.topk(sal, k, dim=1).indices


def test_default_fusion_is_the_av_head_and_checkpoints_without_it_load(tiny_cfg):
    model = build_model(tiny_cfg).eval()
    x = _inputs(model)
    with torch.no_grad():
        assert torch.equal(model.classify(*x), model.av_logits(*x))
    old = {k: v for k, v in model.state_dict().items() if k != "fusion.weights"}
    other = build_model(tiny_cfg)
    other.fusion.weights.fill_(0.5)
    missing, unexpected = other.load_state_dict(old, strict=True)
    assert not missing and not unexpected and tuple(other.fusion.weights.tolist()) == DEFAULT
    other.fusion.weights.copy_(torch.tensor([1.0, 0.25, 0.5]))
    again = build_model(tiny_cfg)
    again.load_state_dict(other.state_dict())
    assert again.fusion.weights.tolist() == [1.0, 0.25, 0.5]     # fitted weights travel in the checkpoint


def test_with_the_visual_evidence_withheld_the_fused_answer_is_the_audio_heads(tiny_cfg):
    """Heads that see the picture and carry no information (uniform scores, as when the visual
    evidence is withheld) leave the audio head's answer, at any fitted weights."""
    model = build_model(tiny_cfg).eval()
    for head in (model.glance_head, model.head):
        torch.nn.init.zeros_(head.classify.weight)
        torch.nn.init.zeros_(head.classify.bias)
    model.fusion.weights.copy_(torch.tensor([1.0, 1.0, 1.0]))
    x = _inputs(model, b=16)
    with torch.no_grad():
        fused, audio = model.classify(*x), model.audio_head(x[1])
    assert torch.equal(fused.argmax(-1), audio.argmax(-1))
    assert torch.allclose(fused.softmax(-1), audio.softmax(-1), atol=1e-5)


def test_fit_anchors_the_audio_head_and_uses_the_picture_only_where_it_helps():
    g = torch.Generator().manual_seed(0)
    n, c = 400, 5
    y = torch.randint(0, c, (n,), generator=g)
    onehot = torch.nn.functional.one_hot(y, c).float()
    audio = 2.0 * onehot + 1.5 * torch.randn(n, c, generator=g)          # right about 2/3 of the time
    noise = 6.0 * torch.randn(n, c, generator=g)                          # a memorised picture: confident, unrelated
    w = fit(audio, noise, noise, y)
    assert w == (1.0, 0.0, 0.0)                                           # the misleading picture is switched off
    helpful = 2.0 * onehot + 1.5 * torch.randn(n, c, generator=g)         # independent, informative evidence
    w = fit(audio, noise, helpful, y)
    assert w[0] == 1.0 and w[1] == 0.0 and w[2] > 0
    fused = audio.log_softmax(-1) + w[2] * helpful.log_softmax(-1)
    assert (fused.argmax(-1) == y).float().mean() > (audio.argmax(-1) == y).float().mean() + 0.05


def test_modality_dropout_withholds_one_modality_per_clip():
    gvec, avec, lvec = torch.ones(4000, 8, 3), torch.ones(4000, 8, 2), torch.ones(4000, 2, 5)
    assert drop_modalities(gvec, avec, lvec, 0.0, 0.0) == (gvec, avec, lvec)      # off: untouched, no draw
    g, a, l = drop_modalities(gvec, avec, lvec, 1.0, 0.0)
    assert not g.any() and not l.any() and torch.equal(a, avec)
    g, a, l = drop_modalities(gvec, avec, lvec, 0.0, 1.0)
    assert torch.equal(g, gvec) and torch.equal(l, lvec) and not a.any()
    torch.manual_seed(0)
    g, a, l = drop_modalities(gvec, avec, lvec, 0.5, 0.15)
    no_vis, no_aud = (g.sum((1, 2)) == 0), (a.sum((1, 2)) == 0)
    assert torch.equal(no_vis, l.sum((1, 2)) == 0)                         # glance and patches go together
    assert not (no_vis & no_aud).any()                                     # never both
    assert abs(no_vis.float().mean() - 0.5) < 0.04 and abs(no_aud.float().mean() - 0.15) < 0.03


def test_validation_fits_the_fusion_and_training_uses_modality_dropout(tmp_path, tiny_cfg):
    """A small slice: with ``fuse`` each validation after warm-up fits the weights (audio anchored at 1)
    and the best checkpoint carries them; modality dropout changes what the AV head trains on."""
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.train.checkpoint import load_checkpoint
    from avgn_edge.train.loop import train
    from avgn_edge.train.recipe import Recipe
    from avgn_edge.train.validate import Validation
    ds = open_dataset("synth:seed=0,clips=16", tiny_cfg)
    r = Recipe(batch_size=4, warmup_steps=2, glance_steps=2, finetune_steps=2, drop_visual=0.5, drop_audio=0.15)
    val = Validation(open_dataset("synth:seed=2000,clips=8", tiny_cfg), batch_size=4, workers=0, fuse=True)
    best = train(tiny_cfg, ds, tmp_path / "fused", r, progress=False, workers=0, validation=val, log_every=1)
    rows = [json.loads(line) for line in (tmp_path / "fused" / "validation.jsonl").read_text().splitlines()]
    assert "fusion" not in rows[0] and all(x["fusion"]["audio"] == 1.0 for x in rows[1:])
    model, _ = load_checkpoint(best)
    assert model.fusion.weights[0].item() == 1.0
    plain = train(tiny_cfg, ds, tmp_path / "plain", Recipe(batch_size=4, warmup_steps=2, glance_steps=2,
                                                           finetune_steps=2), progress=False, workers=0)
    a = load_checkpoint(plain)[0].head.classify.weight       # the same seed: only the dropout differs
    b = load_checkpoint(tmp_path / "fused" / "model.safetensors")[0].head.classify.weight
    assert not torch.equal(a, b)
