"""The event record every output publishes: Frigate's ``events`` shape plus the audio-visual evidence.

    {"type": "new" | "update" | "end", "before": {...} | None, "after": {...}}
    record: id, camera, label, sub_label, score, top_score, start_time, end_time (seconds since
            the epoch), box (the best decision's first patch, frame pixels), has_clip,
            has_snapshot, clip, snapshot (paths, or None), and ``evidence``: the chosen
            snippets of the best decision, each {t (epoch), saliency, box}; ``carried``: heard, seen
            or both (what carried the best decision: runtime/modality.py), None when the model can't say

``Media`` names an event's clip and snapshot files before they exist, so that a record
published at the event's start already carries its paths (the clip appears once the event
ended and ``post_capture`` passed; the snapshot at once).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..events.tracker import wall_time

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe(name: str) -> str:
    """A file-name-safe form of a camera or label name."""
    return _SAFE.sub("_", name) or "_"


class Media:
    """Where a camera's event clips and snapshots go: ``root/<camera>/<label>/<id>.mp4|.jpg``."""

    def __init__(self, root: str | Path, clips: bool = True, snapshots: bool = True):
        self.root, self.clips, self.snapshots = Path(root), clips, snapshots

    def base(self, event: dict) -> Path:
        return self.root / safe(event["camera"]) / safe(event["label"]) / safe(event["id"])

    def clip(self, event: dict) -> Path | None:
        b = self.base(event)
        return b.with_name(b.name + ".mp4") if self.clips else None

    def snapshot(self, event: dict) -> Path | None:
        b = self.base(event)
        return b.with_name(b.name + ".jpg") if self.snapshots else None


def record(event: dict | None, media: Media | None = None, *, wall=wall_time) -> dict | None:
    """The outward record of a tracker event (``Event.to_dict()``); ``wall`` converts its times."""
    if event is None:
        return None
    ev = event.get("evidence") or []
    clip = media.clip(event) if media is not None else None
    snap = media.snapshot(event) if media is not None else None
    end = event.get("end_time")
    return {"id": event["id"], "camera": event["camera"], "label": event["label"], "sub_label": None,
            "score": round(float(event["score"]), 4), "top_score": round(float(event["top_score"]), 4),
            "start_time": round(wall(event["start_time"]), 3), "end_time": None if end is None else round(wall(end), 3),
            "box": ev[0]["box"] if ev else None, "has_clip": clip is not None, "has_snapshot": snap is not None,
            "clip": None if clip is None else str(clip), "snapshot": None if snap is None else str(snap),
            "evidence": [{"t": round(wall(e["t"]), 3), "saliency": e["saliency"], "box": e["box"]} for e in ev],
            "carried": event.get("carried")}


def message(transition, media: Media | None = None, *, wall=wall_time) -> dict:
    """``{"type", "before", "after"}`` of one transition (Frigate's ``<prefix>/events`` payload;
    as there, a ``new`` event's ``before`` is the event itself)."""
    after = record(transition.event, media, wall=wall)
    before = record(transition.before, media, wall=wall) if transition.before is not None else dict(after)
    return {"type": transition.type, "before": before, "after": after}
