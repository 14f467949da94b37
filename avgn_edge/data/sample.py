"""One training/evaluation clip's tensors, shared by the synthetic and the video datasets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    frames: np.ndarray                      # [T, H, W, 3] uint8 RGB
    audio: np.ndarray                       # [T, N] float32
    label: int
    event_snippets: np.ndarray | None = None
    boxes: np.ndarray | None = None         # [T, 4] in frame pixels, NaN outside the event
    has_audio: bool = True
    path: str | None = None
    own: bool = True                        # False: the next good clip, in an undecodable file's place
    features: dict | None = None            # frozen encoders' outputs, precomputed (train/features.py)
