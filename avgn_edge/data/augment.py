"""Training-time augmentation, as the glance-and-focus family uses it (off unless asked for).

* ``frame`` - a random frame of each segment instead of its last one (TSN-style sampling, as
  AdaFocusV2 and Uni-AdaFocus train); the audio window moves with the frame. Needs a dataset
  decoded with several candidates per segment (video files); in-memory data ignores it.
* ``crop=S`` - AdaFocusV2's multi-scale crop: a square of side s x frame, s drawn from
  {1, .875, .75, .66} down to S, at a random place, resized back to the frame (one crop per clip).
* ``flip=P`` - horizontal flip with probability P (one per clip).
* ``gain=DB`` - audio gain uniform in +-DB decibels; ``noise=X`` - Gaussian noise of an rms
  drawn uniformly in [0, X].

    --augment                      all of them at the defaults below
    --augment flip,crop=0.75,gain=3

Every draw comes from the generator the loader passes (seeded by epoch and clip index), so a
run's augmentations do not depend on the number of workers or processes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError

SCALES = (1.0, 0.875, 0.75, 0.66)


@dataclass(frozen=True)
class Augment:
    frame: bool = False
    crop: float = 1.0          # smallest crop scale; 1 = no crop
    flip: float = 0.0
    gain: float = 0.0
    noise: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> "Augment | None":
        if text is None or text.strip().lower() in ("off", "none", "no"):
            return None
        if text.strip().lower() in ("", "default", "on"):
            return cls(frame=True, crop=0.66, flip=0.5, gain=6.0, noise=0.005)
        defaults = {"frame": True, "crop": 0.66, "flip": 0.5, "gain": 6.0, "noise": 0.005}
        kw = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if key not in defaults:
                raise InputError(f"unknown augmentation {key!r}", hint="use frame, crop=S, flip=P, gain=DB, noise=X")
            if key == "frame":
                kw[key] = value.lower() not in ("0", "false", "off") if sep else True
                continue
            try:
                kw[key] = float(value) if sep else defaults[key]
            except ValueError:
                raise InputError(f"augmentation {key} needs a number, got {value!r}") from None
        aug = cls(**kw)
        if not (SCALES[-1] <= aug.crop <= 1 and 0 <= aug.flip <= 1 and aug.gain >= 0 and aug.noise >= 0):
            raise InputError(f"augmentation out of range: {aug}", hint="crop in [0.66, 1], flip in [0, 1], gain, noise >= 0")
        return aug

    @property
    def candidates(self) -> int:
        """Frames per segment a video dataset must offer for this augmentation."""
        return 3 if self.frame else 1

    def apply(self, s, rng: np.random.Generator):
        frames, boxes, audio = s.frames, s.boxes, s.audio
        size = frames.shape[-2]
        scales = [x for x in SCALES if x >= self.crop - 1e-9]
        scale = scales[rng.integers(len(scales))] if len(scales) > 1 else 1.0
        if scale < 1.0:
            side = int(round(scale * size))
            x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            frames = np.stack([cv2.resize(f[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_LINEAR)
                               for f in frames])
            if boxes is not None:
                boxes = np.clip((boxes - np.array([x0, y0, x0, y0], np.float32)) * (size / side), 0, size)
        if self.flip and rng.random() < self.flip:
            frames = np.ascontiguousarray(frames[:, :, ::-1])
            if boxes is not None:
                boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1)
        if self.gain:
            audio = audio * np.float32(10 ** (rng.uniform(-self.gain, self.gain) / 20))
        if self.noise:
            audio = audio + rng.normal(0, rng.uniform(0, self.noise), audio.shape).astype(np.float32)
        return dataclasses.replace(s, frames=frames, boxes=boxes, audio=audio.astype(np.float32, copy=False))


class Augmented:
    """``dataset`` whose training view (``train_view``) is augmented; indexing gives the plain view."""

    def __init__(self, dataset, spec: Augment):
        self.dataset, self.spec = dataset, spec

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]

    def __getattr__(self, name):
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def train_view(self, i: int, rng: np.random.Generator):
        read = getattr(self.dataset, "read", None)
        s = read(i, rng if self.spec.frame else None) if read else self.dataset[i]
        return self.spec.apply(s, rng)
