"""A stream's event state: decisions in, event records out. The one call site the event state
machine of issue 10 (new/update/end, hold time) replaces when it lands.

Today's rule is the live EventsSink's (avgn_edge/live/sinks.py): an ``onset`` when the top
label's score reaches its threshold (per label: ``detect.filters``), an ``offset`` when
the top label changes or its score falls below it. Counts per label feed /metrics.
"""

from __future__ import annotations

from ..runtime.result import Result


class EventState:
    def __init__(self, detect):
        self.detect = detect                     # DetectConfig: threshold, filters
        self.active: dict | None = None          # {"label", "t", "peak"}
        self.by_label: dict[str, int] = {}       # onsets per label (bounded by the label set)

    def update(self, r: Result) -> list[dict]:
        """The event records this decision causes (possibly none)."""
        out = []
        label, score = r.top(1)[0]
        if self.active and (label != self.active["label"] or score < self.detect.threshold_for(label)):
            out.append(self._offset(r.t))
        if self.active is None and score >= self.detect.threshold_for(label):
            self.active = {"label": label, "t": r.t, "peak": score}
            self.by_label[label] = self.by_label.get(label, 0) + 1
            out.append({"type": "onset", "label": label, "t": round(r.t, 4), "score": round(score, 4)})
        elif self.active:
            self.active["peak"] = max(self.active["peak"], score)
        return out

    def _offset(self, t: float) -> dict:
        a, self.active = self.active, None
        return {"type": "offset", "label": a["label"], "t": round(t, 4), "onset": round(a["t"], 4),
                "duration": round(t - a["t"], 4), "peak": round(a["peak"], 4)}

    def close(self, t: float | None) -> list[dict]:
        """End an active event (the stream stops)."""
        return [self._offset(t)] if self.active and t is not None else []
