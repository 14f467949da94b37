"""AESPA: audio-enhanced spatial patch attention over the glance feature map."""

from __future__ import annotations

import math

import torch
from torch import nn


class AESPA(nn.Module):
    """gmap [N, C, h, w], avec [N, Da], token [N, d] -> enhanced [N, e+1, h, w], attn logits [N, h*w].

    The snippet's sound (with its AV-TeST context token) forms a query that attends over
    the glance cells (where is what I hear?), and modulates the cell features channel-wise
    (FiLM). The enhanced coarse features are the modulated cells plus the attention map.
    """

    def __init__(self, cfg, glance_channels: int, audio_dim: int):
        super().__init__()
        e = cfg.aespa_dim
        self.query = nn.Linear(audio_dim + cfg.d_model, e)
        self.key = nn.Conv2d(glance_channels, e, 1)
        self.value = nn.Conv2d(glance_channels, e, 1)
        self.film = nn.Linear(audio_dim, 2 * e)
        self.scale = 1.0 / math.sqrt(e)
        self.dim = e + 1

    def forward(self, gmap, avec, token):
        n, _, h, w = gmap.shape
        q = self.query(torch.cat([avec, token], dim=-1))                     # [N, e]
        k = self.key(gmap).flatten(2)                                        # [N, e, hw]
        logits = torch.matmul(q[:, None, :], k).squeeze(1) * self.scale      # [N, hw]
        attn = torch.softmax(logits, dim=-1)
        gamma, beta = self.film(avec).chunk(2, dim=-1)
        v = self.value(gmap) * (1 + gamma[..., None, None]) + beta[..., None, None]
        enhanced = torch.cat([torch.relu(v), (attn * (h * w)).view(n, 1, h, w)], dim=1)
        return enhanced, logits
