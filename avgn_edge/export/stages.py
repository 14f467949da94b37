"""One torch module per deployed stage, with exactly the bundle's I/O (leading batch: snippets or decisions)."""

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
    """AV-TeST saliency, top-k, AESPA and the policy: [B,T,...] features -> saliency, indices, centres."""

    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, gmaps, gvecs, avecs):
        d = self.m.decide(gmaps, gvecs, avecs)
        return d.saliency, d.indices.to(torch.int32), d.centres.clamp(0.0, 1.0)


class FocusLocal(nn.Module):
    """patches [B,k,3,P,P] -> lvecs [B,k,Dl]."""

    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, patches):
        b, k = patches.shape[:2]
        return self.m.local_vectors(patches.flatten(0, 1)).view(b, k, -1)


class Head(nn.Module):
    def __init__(self, m: AVGN):
        super().__init__()
        self.m = m

    def forward(self, gvecs, avecs, lvecs, saliency, indices):
        logits = self.m.classify(gvecs, avecs, lvecs, saliency, indices.to(torch.int64))
        return torch.softmax(logits, dim=-1)


WRAPPERS = {"glance_visual": GlanceVisual, "glance_audio": GlanceAudio, "decide": Decide,
            "focus_local": FocusLocal, "head": Head}


def specs_for(model: AVGN, batch=None) -> dict[str, StageSpec]:
    return stage_specs(model.cfg, model.glance.channels, model.glance.map_size, model.glance.dim,
                       model.audio.dim, model.local.dim, batch)


def stage_modules(model: AVGN) -> dict[str, nn.Module]:
    model.eval()
    return {name: WRAPPERS[name](model).eval() for name in STAGES}
