"""AV-TeST: a transformer over the T audio-visual snippet tokens that scores saliency."""

from __future__ import annotations

import torch
from torch import nn


class AVTeST(nn.Module):
    """gvec [B, T, Dg], avec [B, T, Da] -> saliency [B, T], tokens [B, T, d].

    Each token fuses a snippet's pooled glance vector with its audio vector (the
    audio-visual match is decided per snippet), plus a learned position; the encoder
    layers let every snippet see the others.
    """

    def __init__(self, cfg, glance_dim: int, audio_dim: int):
        super().__init__()
        d = cfg.d_model
        self.fuse = nn.Sequential(nn.Linear(glance_dim + audio_dim, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.pos = nn.Parameter(torch.zeros(1, cfg.num_snippets, d))
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, dropout=0.1, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.score = nn.Linear(d, 1)

    def forward(self, gvec: torch.Tensor, avec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.fuse(torch.cat([gvec, avec], dim=-1)) + self.pos
        tokens = self.norm(self.encoder(tokens))
        return self.score(tokens).squeeze(-1), tokens


def select_top_k(saliency: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] of the k most salient snippets, most salient first."""
    return torch.topk(saliency, k, dim=1).indices
