"""Optional ImageNet initialisation from torchvision weight files the user already has.

Nothing is downloaded: point ``--imagenet DIR`` at a folder holding torchvision's files
(e.g. ``resnet50-0676ba61.pth``, ``mobilenet_v2-b0353104.pth``, as found in
``~/.cache/torch/hub/checkpoints``). Tensors whose shapes match are copied.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import InputError

log = logging.getLogger(__name__)


def _find(folder: Path, prefix: str) -> Path | None:
    hits = sorted(folder.glob(f"{prefix}-*.pth"))
    return hits[0] if hits else None


def imagenet_state(cfg, folder: str | Path) -> dict[str, torch.Tensor]:
    """A partial AVGN state dict (``local.*`` and/or ``glance.*``) from torchvision files in ``folder``."""
    from .avgn import build_model

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--imagenet {folder}: no such folder")
    target = build_model(cfg).state_dict()
    out: dict[str, torch.Tensor] = {}
    res = _find(folder, f"resnet{cfg.local_depth}")
    if res:
        src = torch.load(res, map_location="cpu", weights_only=True)
        names = {"conv1": "0", "bn1": "1", **{f"layer{i}": str(3 + i) for i in range(1, cfg.local_stages + 1)}}
        for k, v in src.items():
            head, _, rest = k.partition(".")
            key = f"local.body.{names[head]}.{rest}" if head in names else None
            if key in target and target[key].shape == v.shape:
                out[key] = v
    mob = _find(folder, "mobilenet_v2")
    if mob:
        src = torch.load(mob, map_location="cpu", weights_only=True)
        for k, v in src.items():
            key = f"glance.{k}"
            if key in target and target[key].shape == v.shape:
                out[key] = v
    if not out:
        raise InputError(f"no torchvision weights in {folder} fit the {cfg.name} preset",
                         hint=f"expected resnet{cfg.local_depth}-*.pth and/or mobilenet_v2-*.pth")
    log.info("ImageNet initialisation: %d tensors from %s", len(out), folder)
    return out
