"""Policy network: enhanced coarse features -> the centre of the patch to look at."""

from __future__ import annotations

import torch
from torch import nn


class PatchPolicy(nn.Module):
    """enhanced [N, e, h, w] (+ AESPA logits [N, hw]) -> centres [N, 2] in [0, 1] (x, y), cell logits.

    A per-cell score (added to AESPA's attention logits) and a per-cell sub-cell offset;
    the centre is the soft-argmax: the mean of the offset cell centres weighted by
    softmax(sharpness * score). The sharpening makes it follow the mode of the scores
    (a plain soft-argmax drifts toward the frame centre whenever the scores are not
    one-hot). Offsets start at zero and are learned only through the differentiable crop.
    Continuous and differentiable, and it exports as Softmax + MatMul.
    """

    def __init__(self, in_dim: int, hidden: int, map_size: int, sharpness: float = 4.0):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_dim, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, 3, 1))
        with torch.no_grad():
            self.net[2].weight[1:].zero_()
            self.net[2].bias[1:].zero_()
        self.sharpness = sharpness
        ys, xs = torch.meshgrid(torch.arange(map_size), torch.arange(map_size), indexing="ij")
        cells = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float()
        self.register_buffer("cells", (cells + 0.5) / map_size, persistent=False)   # [hw, 2]
        self.cell = 1.0 / map_size

    def forward(self, enhanced: torch.Tensor, attn_logits: torch.Tensor):
        out = self.net(enhanced).flatten(2)                                 # [N, 3, hw]
        logits = out[:, 0] + attn_logits
        offsets = 0.5 * self.cell * torch.tanh(out[:, 1:]).transpose(1, 2)  # [N, hw, 2]
        weights = torch.softmax(self.sharpness * logits, dim=-1)
        centres = torch.matmul(weights[:, None, :], self.cells + offsets).squeeze(1)
        return centres.clamp(0.0, 1.0), logits
