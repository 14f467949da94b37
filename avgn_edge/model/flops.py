"""GFLOPs per clip, by stage, counted by torch's FlopCounterMode.

Reported as the glance-and-focus papers do: 1 GFLOP = 10^9 multiply-accumulates
(ResNet-50 at 224 px = 4.1), i.e. torch's FLOP count / 2.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def _gmacs(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / 2e9


def stage_gflops(model) -> dict[str, float]:
    """GFLOPs per clip of each deployed stage and of the baselines."""
    cfg = model.cfg
    T, k, S = cfg.num_snippets, cfg.top_k, cfg.frame_size
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    view = torch.zeros(1, 1, 3, cfg.glance_size, cfg.glance_size, device=dev)
    wave = torch.zeros(1, 1, cfg.audio_samples, device=dev)
    gmap, gvec = model.encode_glance(view.expand(1, T, -1, -1, -1))
    avec = model.encode_audio(wave.expand(1, T, -1))
    d = model.decide(gmap, gvec, avec)
    patches = torch.zeros(k, 3, cfg.patch_size, cfg.patch_size, device=dev)
    lvec = model.local_vectors(patches)[None]
    full = torch.zeros(1, T, 3, S, S, device=dev)
    out = {
        "glance_visual": T * _gmacs(lambda: model.encode_glance(view)),
        "glance_audio": T * _gmacs(lambda: model.encode_audio(wave)),
        "decide": _gmacs(lambda: model.decide(gmap, gvec, avec)),
        "focus_local": _gmacs(lambda: model.local_vectors(patches)),
        "head": _gmacs(lambda: model.classify(gvec, avec, lvec, d.saliency, d.indices)),
    }
    out["avgn"] = sum(out.values())
    out["dense"] = out["glance_visual"] + out["glance_audio"] + _gmacs(
        lambda: model.dense_logits(gvec, avec, model.dense_maps(full)))
    out["glance_only"] = out["glance_visual"] + _gmacs(lambda: model.glance_head(gvec))
    out["audio_only"] = out["glance_audio"] + _gmacs(lambda: model.audio_head(avec))
    model.train(was_training)
    return out
