"""The modality graph (runtime/modality.py): the model's audio-only and glance-only heads over a window."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..bundle import BATCH, BatchRange, StageSpec, TensorSpec
from ..runtime.modality import FILE
from .onnx_graph import export_stage


class Modality(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, gvecs, avecs):
        return torch.softmax(self.m.audio_head(avecs), -1), torch.softmax(self.m.glance_head(gvecs), -1)


def export_modality(model, bundle, gvecs: np.ndarray, avecs: np.ndarray) -> dict:
    """Write ``modality.onnx`` into the bundle (hashed in its manifest); returns its parity vs PyTorch."""
    cfg = model.cfg
    spec = StageSpec("modality", (TensorSpec("gvecs", (BATCH, *gvecs.shape[1:]), "float32"),
                                  TensorSpec("avecs", (BATCH, *avecs.shape[1:]), "float32")),
                     (TensorSpec("heard", (BATCH, cfg.num_classes), "float32"),
                      TensorSpec("seen", (BATCH, cfg.num_classes), "float32")), BatchRange("decisions"))
    module = Modality(model).eval()
    export_stage(module, spec, {"gvecs": gvecs, "avecs": avecs}, bundle.root / FILE)
    bundle.add_file(FILE)
    from ..runtime.modality import ModalityRunner
    heard, seen = ModalityRunner(bundle.root / FILE)(gvecs, avecs)
    with torch.no_grad():
        h, s = module(torch.from_numpy(gvecs), torch.from_numpy(avecs))
    return {"heard_max_abs": float(np.abs(heard - h.numpy()).max()), "seen_max_abs": float(np.abs(seen - s.numpy()).max())}
