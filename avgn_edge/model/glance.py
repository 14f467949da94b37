"""Glance visual encoder: torchvision's MobileNetV2 on the low-resolution view."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.mobilenetv2 import MobileNetV2


class GlanceEncoder(nn.Module):
    """[N, 3, g, g] -> feature map [N, C, h, w] and pooled vector [N, 2C] (mean ++ max).

    The network is torchvision's MobileNetV2 with a configurable width and block
    setting (so the output stride, hence the map size the policy works on, is a config
    choice), without its final 1x1 expansion to 1280 channels.
    """

    def __init__(self, cfg):
        super().__init__()
        if cfg.encoder == "lite0":
            from .lite import LiteTrunk
            self.features = LiteTrunk(cfg.lite_blocks[0])
        else:
            net = MobileNetV2(width_mult=cfg.glance_width,
                              inverted_residual_setting=[list(b) for b in cfg.glance_blocks])
            self.features = net.features[:-1]
        with torch.no_grad():
            probe = self.features(torch.zeros(1, 3, cfg.glance_size, cfg.glance_size))
        self.channels = probe.shape[1]
        self.map_size = probe.shape[-1]
        self.dim = 2 * self.channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.features(x)
        vec = torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)
        return fmap, vec
