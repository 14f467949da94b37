"""A decision: class scores, where the model looked (when and where), and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    scores: np.ndarray          # [C] class probabilities
    labels: tuple[str, ...]
    saliency: np.ndarray        # [T] per snippet of the window, oldest first
    timestamps: np.ndarray      # [T] seconds, the snippets' times
    indices: np.ndarray         # [k] window positions that got a patch, most salient first
    boxes: np.ndarray           # [k, 4] patch boxes (x0, y0, x1, y1) in frame pixels
    timings: dict[str, float] = field(default_factory=dict)   # milliseconds per stage
    audio_ok: bool = True       # False when a snippet's audio was replaced (NaN, gap)
    heard: np.ndarray | None = None   # [C] the sound alone (the model's audio-only head), if the bundle has it
    seen: np.ndarray | None = None    # [C] the picture alone (its glance-only head)

    @property
    def t(self) -> float:
        """Time of the decision: the newest snippet's timestamp."""
        return float(self.timestamps[-1])

    @property
    def label(self) -> str:
        return self.labels[int(np.argmax(self.scores))]

    @property
    def score(self) -> float:
        return float(np.max(self.scores))

    @property
    def carried(self) -> str | None:
        """What carried the decided label: heard, seen or both (runtime/modality.py); None if unknown."""
        from .modality import carried_for
        return carried_for(self, int(np.argmax(self.scores)))

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.scores, kind="stable")[:n]
        return [(self.labels[i], float(self.scores[i])) for i in order]

    def to_dict(self, top: int = 5) -> dict:
        return {"t": round(self.t, 4), "top": [{"label": l, "score": round(s, 5)} for l, s in self.top(top)],
                "saliency": [round(float(x), 4) for x in self.saliency],
                "timestamps": [round(float(x), 4) for x in self.timestamps],
                "selected": [int(i) for i in self.indices],
                "boxes": [[round(float(v), 1) for v in b] for b in self.boxes],
                "timings_ms": {k: round(v, 3) for k, v in self.timings.items()}, "audio_ok": self.audio_ok,
                "carried": self.carried}
