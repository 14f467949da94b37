"""Fitting the late-fusion weights (model/fusion.py) on held-out clips during validation."""

from __future__ import annotations

import torch

from ..model import fusion
from .batches import loader


@torch.no_grad()
def head_logits(model, dataset, batch_size: int = 16, workers: int = 1, device=None, gather=None) -> dict:
    """Per clip: the audio-only, glance-only and AV heads' logits [N, C] and the labels [N]."""
    model.eval()
    device = device or next(model.parameters()).device
    join = (lambda t: gather(t.to(device)).cpu()) if gather else (lambda t: t.cpu())
    out = {k: [] for k in ("audio", "glance", "av", "y")}
    for batch in loader(dataset, batch_size, shuffle=False, workers=workers):
        own = batch["own"].to(device)
        frames, audio = batch["frames"].to(device), batch["audio"].to(device)
        gmap, gvec = model.encode_glance(model.glance_input(frames))
        avec = model.encode_audio(audio)
        d = model.decide(gmap, gvec, avec)
        lvec = model.focus(model.full_input(frames), d.indices, d.centres)
        for k, v in (("audio", model.audio_head(avec)), ("glance", model.glance_head(gvec)),
                     ("av", model.av_logits(gvec, avec, lvec, d.saliency, d.indices)),
                     ("y", batch["label"].to(device))):
            out[k].append(v[own])
    return {k: join(torch.cat(v)) for k, v in out.items()}


def fit_fusion(model, dataset, **kw) -> tuple[float, float, float]:
    """Fit ``model.fusion``'s weights on ``dataset`` (held-out packages) and set them."""
    h = head_logits(model, dataset, **kw)
    w = fusion.fit(h["audio"], h["glance"], h["av"], h["y"])
    model.fusion.weights.copy_(torch.tensor(w))
    return w
