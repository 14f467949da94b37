"""Local encoder: torchvision's ResNet on full-resolution patches (the expensive 'focus')."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

_LAYOUTS = {10: (BasicBlock, [1, 1, 1, 1]), 18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
            50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


class LocalEncoder(nn.Module):
    """[N, 3, H, W] -> feature map [N, D, H/s, W/s]; ``pool`` gives the [N, D] vector.

    torchvision's ResNet of the configured depth, keeping its first ``local_stages``
    residual stages (fewer stages: a smaller, shallower-stride encoder for small patches).
    The vector is the spatial max, so a patch and a whole frame that contain the same
    object give the same evidence.
    """

    def __init__(self, cfg):
        super().__init__()
        if cfg.encoder == "lite0":
            from .lite import LiteTrunk
            self.body = LiteTrunk(cfg.lite_blocks[2])
            self.dim = self.body.channels
            return
        block, layers = _LAYOUTS[cfg.local_depth]
        net = ResNet(block, layers)
        stages = [net.layer1, net.layer2, net.layer3, net.layer4][:cfg.local_stages]
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, *stages)
        self.dim = (64 * block.expansion) * 2 ** (cfg.local_stages - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @staticmethod
    def pool(fmap: torch.Tensor) -> torch.Tensor:
        return fmap.amax(dim=(-2, -1))
