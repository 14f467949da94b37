"""Fusion head: per-snippet class scores from concatenated features, attention-pooled."""

from __future__ import annotations

import torch
from torch import nn


class SnippetHead(nn.Module):
    """features [B, n, D_i]... (+ prior [B, n]) -> logits [B, C].

    Each snippet gets its own class logits and a gate; the clip's logits are the
    softmax(gate + prior)-weighted mean over snippets (attention MIL pooling). AVGN's head
    fuses global, audio and local features of the k selected snippets with their saliency
    as the prior; the baselines (glance only, audio only, dense) are the same head over
    other inputs.
    """

    def __init__(self, dims: list[int], hidden: int, num_classes: int, dropout: float = 0.2):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(sum(dims), hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.classify = nn.Linear(hidden, num_classes)
        self.gate = nn.Linear(hidden, 1)

    def forward(self, *features: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        h = self.mlp(torch.cat(features, dim=-1))
        gate = self.gate(h).squeeze(-1)
        if prior is not None:
            gate = gate + prior
        weights = torch.softmax(gate, dim=-1)
        return torch.matmul(weights[:, None, :], self.classify(h)).squeeze(1)
