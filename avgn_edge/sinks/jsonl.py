"""JSON lines: a ``decision`` record per decision (optional) and one record per event transition.

    {"type": "decision", "camera", "t", "top", "saliency", "timestamps", "selected", "boxes", ...}
    {"type": "onset" | "update" | "offset", ...}   the tracker's Transition.record(), onsets and
                                                   offsets with "clip" and "snapshot" when clips are on

Times are the decisions' own (``time.monotonic()`` for live sources), as in ``Result.to_dict``;
the clip and snapshot paths are those the ``record`` output writes.
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

    def event(self, camera, tr):
        rec = {"camera": camera, **tr.record()}   # the tracker's own JSON-lines form
        if tr.type != "update" and self.media is not None:
            clip, snap = self.media.clip(tr.event), self.media.snapshot(tr.event)
            rec.update(clip=clip and str(clip), snapshot=snap and str(snap))
        self._write(rec)

    def close(self):
        if not self.f.closed:
            self.f.close()
