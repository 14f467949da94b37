"""AVGN modules: shapes, gradients, the crop's geometry, presets and GFLOPs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avgn_edge.config import get_preset, list_presets, ModelConfig  # noqa: E402
from avgn_edge.errors import InputError  # noqa: E402
from avgn_edge.model import build_model  # noqa: E402
from avgn_edge.model.views import crop_patches, patch_grid  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(get_preset("tiny"))


def _inputs(cfg, b=2):
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (b, cfg.num_snippets, cfg.frame_size, cfg.frame_size, 3), dtype=torch.uint8,
                           generator=g)
    wave = torch.randn(b, cfg.num_snippets, cfg.audio_samples, generator=g) * 0.1
    return frames, wave


def test_stage_shapes(model):
    cfg = model.cfg
    frames, wave = _inputs(cfg)
    B, T, k = 2, cfg.num_snippets, cfg.top_k
    gmap, gvec = model.encode_glance(model.glance_input(frames))
    assert gmap.shape == (B, T, model.glance.channels, model.glance.map_size, model.glance.map_size)
    assert gvec.shape == (B, T, model.glance.dim)
    avec = model.encode_audio(wave)
    assert avec.shape == (B, T, model.audio.dim)
    d = model.decide(gmap, gvec, avec)
    assert d.saliency.shape == (B, T) and d.indices.shape == (B, k) and d.centres.shape == (B, k, 2)
    assert d.cell_logits.shape == (B, k, model.glance.map_size ** 2)
    assert torch.all((d.centres >= 0) & (d.centres <= 1))
    # top-k really picks the k largest saliencies
    assert torch.equal(torch.sort(d.indices, 1).values, torch.sort(torch.topk(d.saliency, k).indices, 1).values)
    lvec = model.focus(model.full_input(frames), d.indices, d.centres)
    assert lvec.shape == (B, k, model.local.dim)
    logits = model.classify(gvec, avec, lvec, d.saliency, d.indices)
    assert logits.shape == (B, cfg.num_classes)
    dense = model.dense_logits(gvec, avec, model.dense_maps(model.full_input(frames)))
    assert dense.shape == (B, cfg.num_classes)


def test_every_module_gets_gradients(model):
    cfg = model.cfg
    frames, wave = _inputs(cfg)
    model.train()
    logits, d = model(frames, wave)
    gmap, gvec = model.encode_glance(model.glance_input(frames))
    avec = model.encode_audio(wave)
    dense = model.dense_logits(gvec, avec, model.dense_maps(model.full_input(frames)))
    ev = model.evidence(model.dense_maps(model.full_input(frames)).flatten(0, 1))
    loss = logits.logsumexp(-1).sum() + d.cell_logits.logsumexp(-1).sum() + dense.sum() + ev.sum() \
        + model.glance_head(gvec).sum() + model.audio_head(avec).sum()
    model.zero_grad()
    loss.backward()
    for name in ["glance", "audio", "avtest", "aespa", "policy", "local", "head", "glance_head", "audio_head",
                 "dense_head", "evidence"]:
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name
    model.eval()


def test_patch_centres_receive_gradient_through_the_crop():
    images = torch.rand(1, 3, 64, 64)
    centres = torch.tensor([[0.4, 0.6]], requires_grad=True)
    crop_patches(images, centres, 16).sum().backward()
    assert centres.grad is not None and centres.grad.abs().sum() > 0


def test_crop_geometry():
    # a frame whose pixel value encodes its coordinates: the patch must be the exact window
    frame = torch.arange(64 * 64, dtype=torch.float32).view(1, 1, 64, 64).expand(1, 3, 64, 64).contiguous()
    patch = crop_patches(frame, torch.tensor([[0.5, 0.25]]), 16)[0, 0]
    # centre (32, 16) px, box [24, 40) x [8, 24)
    assert torch.allclose(patch, frame[0, 0, 8:24, 24:40])
    # centres outside the frame clamp so the box stays inside
    corner = crop_patches(frame, torch.tensor([[1.5, -1.0]]), 16)[0, 0]
    assert torch.allclose(corner, frame[0, 0, 0:16, 48:64])
    g = patch_grid(torch.tensor([[0.5, 0.5]]), 16, 64)
    assert g.shape == (1, 16, 16, 2) and torch.all(g.abs() <= 1)


def test_presets():
    assert {"tiny", "synth", "paper"} <= set(list_presets())
    with pytest.raises(InputError):
        get_preset("huge")
    with pytest.raises(InputError):
        get_preset("tiny", top_k=99)
    cfg = get_preset("synth")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_tiny_forward_is_fast(model):
    # "well under a second" is a property of the preset's size, checked by its GFLOPs, not by a timer
    from avgn_edge.model.flops import stage_gflops
    assert stage_gflops(model)["avgn"] < 0.05


@pytest.mark.slow
def test_paper_preset_builds_runs_and_reports_gflops():
    from avgn_edge.model.flops import stage_gflops
    cfg = get_preset("paper")
    m = build_model(cfg).eval()
    f = stage_gflops(m)
    # MobileNetV2 glance at 224 (~0.3 GFLOPs) x16 and ResNet-50 at 128 px (~1.35) x k
    assert 4.0 < f["glance_visual"] < 6.0
    assert 1.2 * cfg.top_k < f["focus_local"] < 1.5 * cfg.top_k
    with torch.no_grad():
        logits, d = m(*_inputs(cfg, b=1))
    assert logits.shape == (1, cfg.num_classes) and d.indices.shape == (1, cfg.top_k)
