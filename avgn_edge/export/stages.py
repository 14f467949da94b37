"""One torch module per deployed stage, with exactly the bundle's I/O (batch of one decision)."""

from __future__ import annotations

import torch
from torch import nn

from ..bundle import STAGES, StageSpec, stage_specs
from ..model.avgn import AVGN


class GlanceVisual(nn.Module):
    def __init__(self, m: AVGN):
        super().__init__()
        self.glance = m.glance

    def forward(self, glance):
        return self.glance(glance)


class GlanceAudio(nn.Module):
    def __init__(self, m: AVGN):
        super().__init__()
        self.audio = m.audio

    def forward(self, wave):
        return self.audio(wave)


class Decide(nn.Module):
    """AV-TeST saliency, top-k, AESPA and the policy: [T,...] features -> saliency, indices, centres."""

    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, gmaps, gvecs, avecs):
        d = self.m.decide(gmaps[None], gvecs[None], avecs[None])
        centres = d.centres[0].clamp(0.0, 1.0)
        return d.saliency[0], d.indices[0].to(torch.int32), centres


class FocusLocal(nn.Module):
    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, patches):
        return self.m.local_vectors(patches)


class Head(nn.Module):
    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, gvecs, avecs, lvecs, saliency, indices):
        idx = indices.to(torch.int64)[None]
        logits = self.m.classify(gvecs[None], avecs[None], lvecs[None], saliency[None], idx)
        return torch.softmax(logits[0], dim=-1)


WRAPPERS = {"glance_visual": GlanceVisual, "glance_audio": GlanceAudio, "decide": Decide,
            "focus_local": FocusLocal, "head": Head}


def specs_for(model: AVGN) -> dict[str, StageSpec]:
    return stage_specs(model.cfg, model.glance.channels, model.glance.map_size, model.glance.dim,
                       model.audio.dim, model.local.dim)


def stage_modules(model: AVGN) -> dict[str, nn.Module]:
    model.eval()
    return {name: WRAPPERS[name](model).eval() for name in STAGES}
