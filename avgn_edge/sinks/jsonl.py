"""JSON lines: a ``decision`` record per decision (optional) and one record per event transition.

    {"type": "decision", "camera", "t", "top", "saliency", "timestamps", "selected", "boxes", ...}
    {"type": "onset",  "id", "camera", "label", "t" (start), "score", "evidence", "clip", "snapshot"}
    {"type": "update", "id", "camera", "label", "t", "score", "top_score", "evidence"}
    {"type": "offset", "id", "camera", "label", "t" (last heard), "onset", "duration", "peak", "clip", "snapshot"}

Times are the decisions' own (``time.monotonic()`` for live sources), as in ``Result.to_dict``;
the clip and snapshot paths are those the ``record`` output writes (None without it).
Flushed after every call: a crash loses nothing already written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import SourceError
from .base import Sink
from .records import Media


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, path: str | os.PathLike, *, decisions: bool = True, append: bool = False, top: int = 3,
                 media: Media | None = None):
        self.path, self.decisions, self.top, self.media = Path(path), decisions, top, media
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = open(self.path, "a" if append else "w")
        except OSError as exc:
            raise SourceError(f"cannot write the events file {self.path}: {exc.strerror}") from None

    def _write(self, record: dict):
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def decision(self, camera, result):
        if self.decisions:
            self._write({"type": "decision", "camera": camera, **result.to_dict(top=self.top)})

    def _paths(self, e: dict) -> dict:
        clip = self.media.clip(e) if self.media is not None else None
        snap = self.media.snapshot(e) if self.media is not None else None
        return {"clip": clip and str(clip), "snapshot": snap and str(snap)}

    def event(self, camera, tr):
        e = tr.event
        head = {"id": e["id"], "camera": e["camera"], "label": e["label"]}
        if tr.type == "new":
            self._write({"type": "onset", **head, "t": round(e["start_time"], 4), "score": round(e["score"], 4),
                         "evidence": e["evidence"], **self._paths(e)})
        elif tr.type == "update":
            self._write({"type": "update", **head, "t": round(tr.t, 4), "score": round(e["score"], 4),
                         "top_score": round(e["top_score"], 4), "evidence": e["evidence"]})
        else:
            self._write({"type": "offset", **head, "t": round(e["end_time"], 4), "onset": round(e["start_time"], 4),
                         "duration": round(e["end_time"] - e["start_time"], 4), "peak": round(e["top_score"], 4),
                         **self._paths(e)})

    def close(self):
        if not self.f.closed:
            self.f.close()
