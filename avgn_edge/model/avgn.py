"""The Audio-Visual Glance Network, composed of its stages.

Data flow for B clips of T snippets (what the deployed stages compute, in order):

    encode_glance(frames)  -> gmap [B,T,C,h,w], gvec [B,T,Dg]    (every snippet, low-res)
    encode_audio(wave)     -> avec [B,T,Da]                      (every snippet)
    decide(gmap,gvec,avec) -> saliency [B,T], indices [B,k], centres [B,k,2]
    focus(images,indices,centres) -> lvec [B,k,Dl]               (k full-res patches only)
    classify(gvec,avec,lvec,saliency,indices) -> logits [B,C]

The auxiliary heads train the encoders and double as the baselines of the evaluation:
glance only, audio only, and dense (the local encoder on all T full frames). ``classify`` is
the AV head's answer (``av_logits``, what training fits) late-fused with the audio-only and
glance-only heads by weights fitted on held-out clips (fusion.py; default: the AV head alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .aespa import AESPA
from .audio import AudioEncoder
from .avtest import AVTeST, select_top_k
from .fusion import LateFusion
from .glance import GlanceEncoder
from .head import SnippetHead
from .local import LocalEncoder
from .policy import PatchPolicy
from .views import crop_patches, glance_view, to_float


def take(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """x [B, T, ...], indices [B, k] -> [B, k, ...]."""
    b, t = x.shape[:2]
    flat = indices + torch.arange(b, device=indices.device)[:, None] * t
    return x.reshape(b * t, *x.shape[2:])[flat.reshape(-1)].reshape(b, indices.shape[1], *x.shape[2:])


@dataclass
class Decision:
    saliency: torch.Tensor     # [B, T]
    indices: torch.Tensor      # [B, k]
    centres: torch.Tensor      # [B, k, 2] (x, y) in [0, 1]
    cell_logits: torch.Tensor  # [B, k, h*w] the policy's scores over glance cells


class AVGN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        C = cfg.num_classes
        self.glance = GlanceEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        self.avtest = AVTeST(cfg, self.glance.dim, self.audio.dim)
        self.aespa = AESPA(cfg, self.glance.channels, self.audio.dim)
        self.policy = PatchPolicy(self.aespa.dim, cfg.aespa_dim, self.glance.map_size)
        self.local = LocalEncoder(cfg)
        dims = [self.glance.dim, self.audio.dim, self.local.dim]
        self.head = SnippetHead(dims, cfg.head_hidden, C)
        # auxiliary heads (and baselines)
        self.glance_head = SnippetHead(dims[:1], cfg.head_hidden, C)
        self.audio_head = SnippetHead(dims[1:2], cfg.head_hidden, C)
        self.dense_head = SnippetHead(dims, cfg.head_hidden, C)
        self.evidence = nn.Conv2d(self.local.dim, C, 1)   # per-location class evidence
        self.fusion = LateFusion()

    # -- inputs
    def glance_input(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, H, W, 3] uint8 -> [B, T, 3, g, g]."""
        b, t = frames.shape[:2]
        v = glance_view(frames.flatten(0, 1), self.cfg.glance_size, self.cfg.mean, self.cfg.std)
        return v.view(b, t, *v.shape[1:])

    def full_input(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, H, W, 3] uint8 -> [B, T, 3, H, W] normalised."""
        return to_float(frames, self.cfg.mean, self.cfg.std)

    # -- stages
    def encode_glance(self, views: torch.Tensor):
        b, t = views.shape[:2]
        gmap, gvec = self.glance(views.flatten(0, 1))
        return gmap.view(b, t, *gmap.shape[1:]), gvec.view(b, t, -1)

    def encode_audio(self, wave: torch.Tensor) -> torch.Tensor:
        b, t = wave.shape[:2]
        return self.audio(wave.flatten(0, 1)).view(b, t, -1)

    def decide(self, gmap, gvec, avec, indices: torch.Tensor | None = None) -> Decision:
        saliency, tokens = self.avtest(gvec, avec)
        if indices is None:
            indices = select_top_k(saliency, self.cfg.top_k)
        b, k = indices.shape
        sel = lambda x: take(x, indices).flatten(0, 1)
        enhanced, attn = self.aespa(sel(gmap), sel(avec), sel(tokens))
        centres, logits = self.policy(enhanced, attn)
        return Decision(saliency, indices, centres.view(b, k, 2), logits.view(b, k, -1))

    def focus(self, images: torch.Tensor, indices: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        b, k = indices.shape
        patches = crop_patches(take(images, indices).flatten(0, 1), centres.flatten(0, 1), self.cfg.patch_size)
        return self.local_vectors(patches).view(b, k, -1)

    def local_vectors(self, patches: torch.Tensor) -> torch.Tensor:
        return LocalEncoder.pool(self.local(patches))

    def av_logits(self, gvec, avec, lvec, saliency, indices) -> torch.Tensor:
        """The AV head alone over the k chosen snippets (what the training losses fit)."""
        return self.head(take(gvec, indices), take(avec, indices), lvec, prior=take(saliency, indices))

    def classify(self, gvec, avec, lvec, saliency, indices) -> torch.Tensor:
        av = self.av_logits(gvec, avec, lvec, saliency, indices)
        if self.fusion.is_default:
            return av
        return self.fusion(self.audio_head(avec), self.glance_head(gvec), av)

    def forward(self, frames: torch.Tensor, wave: torch.Tensor) -> tuple[torch.Tensor, Decision]:
        """Full AVGN on uint8 frames [B, T, H, W, 3] and audio windows [B, T, N]."""
        gmap, gvec = self.encode_glance(self.glance_input(frames))
        avec = self.encode_audio(wave)
        d = self.decide(gmap, gvec, avec)
        lvec = self.focus(self.full_input(frames), d.indices, d.centres)
        return self.classify(gvec, avec, lvec, d.saliency, d.indices), d

    # -- baselines / teachers
    def dense_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Local encoder on whole full-res frames: [B, T, 3, H, W] -> [B, T, Dl, h', w']."""
        b, t = images.shape[:2]
        m = self.local(images.flatten(0, 1))
        return m.view(b, t, *m.shape[1:])

    def dense_logits(self, gvec, avec, dmaps) -> torch.Tensor:
        return self.dense_head(gvec, avec, LocalEncoder.pool(dmaps))


def build_model(cfg) -> AVGN:
    return AVGN(cfg)
