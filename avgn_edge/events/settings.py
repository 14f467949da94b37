"""When a label's scores make an event: onset thresholds (one per label), the offset
threshold, the hold time and the minimum duration. Validated against a model's labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import BACKGROUND
from ..errors import InputError


def _unit(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise InputError(f"{name} must be in [0, 1], got {v:g}")
    return v


def parse_label_thresholds(items) -> dict[str, float]:
    """``["bell-checker=0.7", "hum-vstripes=0.6,buzz-checker=0.8"]`` -> {label: threshold}."""
    out: dict[str, float] = {}
    for item in items or ():
        for part in filter(None, (p.strip() for p in str(item).split(","))):
            label, sep, value = part.rpartition("=")
            if not sep or not label:
                raise InputError(f"bad label threshold {part!r}", hint="use LABEL=THRESHOLD, e.g. bell-checker=0.7")
            out[label.strip()] = _unit(f"the threshold of {label.strip()}", value)
    return out


@dataclass(frozen=True)
class EventSettings:
    """Onset at ``threshold`` (or the label's own, ``label_thresholds``); the event stays
    heard while its score is >= ``offset`` (default: half its onset threshold) and ends
    ``hold`` seconds after it was last heard (Frigate's ``max_not_heard``). Events shorter
    than ``min_duration`` seconds (first to last decision that heard them) are never
    published. The ``background`` label never opens an event."""

    threshold: float = 0.5
    label_thresholds: dict[str, float] = field(default_factory=dict)
    offset: float | None = None
    hold: float = 1.0
    min_duration: float = 0.0

    def __post_init__(self):
        _unit("the onset threshold", self.threshold)
        for label, v in self.label_thresholds.items():
            _unit(f"the threshold of {label}", v)
        if self.offset is not None:
            _unit("the offset threshold", self.offset)
        for name in ("hold", "min_duration"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v >= 0:
                raise InputError(f"{name.replace('_', ' ')} must be >= 0 seconds, got {v!r}")

    def onset_for(self, label: str) -> float:
        return self.label_thresholds.get(label, self.threshold)

    def offset_for(self, label: str) -> float:
        return 0.5 * self.onset_for(label) if self.offset is None else self.offset

    def check(self, labels) -> "EventSettings":
        """These settings against a model's labels: unknown or background labels, or an offset
        above an onset threshold, are an InputError."""
        labels = tuple(labels)
        unknown = sorted(set(self.label_thresholds) - set(labels))
        if unknown:
            raise InputError(f"unknown label(s) in a label threshold: {', '.join(unknown)}",
                             hint="the model's labels: " + ", ".join(l for l in labels if l != BACKGROUND))
        if BACKGROUND in self.label_thresholds:
            raise InputError(f"{BACKGROUND!r} takes no threshold: it never opens an event")
        for label in labels:
            if label != BACKGROUND and self.offset_for(label) > self.onset_for(label):
                raise InputError(f"the offset threshold {self.offset_for(label):g} is above the onset threshold "
                                 f"{self.onset_for(label):g} of {label}", hint="an event is heard while its "
                                 "score stays >= the offset threshold, so it must not exceed the onset")
        return self

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "label_thresholds": dict(self.label_thresholds),
                "offset": self.offset, "hold_s": self.hold, "min_duration_s": self.min_duration}
