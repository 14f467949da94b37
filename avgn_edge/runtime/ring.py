"""The ring of the last T snippets: frames (for the crop), audio, times and glance features.

Each snippet is encoded once when it arrives; a decision reads the window in time order
however often it slides. A snippet is written only after it has been fully validated and
encoded, so a rejected push never leaves the ring half-updated.
"""

from __future__ import annotations

import numpy as np


class SnippetRing:
    def __init__(self, size: int):
        self.size = size
        self.count = 0                       # snippets ever pushed
        self.frames: list[np.ndarray | None] = [None] * size
        self.times = np.zeros(size)
        self.audio_ok = np.ones(size, bool)
        self.features: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return min(self.count, self.size)

    @property
    def full(self) -> bool:
        return self.count >= self.size

    @property
    def last_time(self) -> float | None:
        return float(self.times[(self.count - 1) % self.size]) if self.count else None

    def push(self, frame: np.ndarray, t: float, features: dict[str, np.ndarray], audio_ok: bool = True) -> int:
        slot = self.count % self.size
        for name, value in features.items():
            if name not in self.features:
                self.features[name] = np.zeros((self.size, *value.shape), value.dtype)
            self.features[name][slot] = value
        self.frames[slot] = frame
        self.times[slot] = t
        self.audio_ok[slot] = audio_ok
        self.count += 1
        return slot

    def order(self) -> np.ndarray:
        """Slots of the window, oldest first."""
        start = self.count % self.size if self.full else 0
        return (start + np.arange(len(self))) % self.size

    @property
    def start(self) -> int:
        return int(self.order()[0])

    def window(self, name: str) -> np.ndarray:
        return self.features[name][self.order()]

    def reset(self):
        self.__init__(self.size)
