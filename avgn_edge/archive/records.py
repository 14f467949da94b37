"""The JSON lines of ``avgn-edge run``, whoever classifies the files (this process or Ray actors),
and what resuming reads back.

    {"path": "cam1/2026-11-30T08.mp4", "t": 2.0, "top": [{"label", "score"}, ...], "saliency": [...],
     "timestamps": [...], "selected": [...], "boxes": [...], "timings_ms": {...}, "audio_ok": true,
     "has_audio": true}
    {"path": "broken.mp4", "error": "cannot decode broken.mp4: ..."}              a file that failed
    {"path": "x.mp4", "error": "Triton at ...: timed out ...", "retry": true}    failed for an outside reason

**Event records (the hook).** ``file_records(..., events=factory)`` feeds the file's decisions to
a tracker of its own, ``factory(labels, camera=path)``, one with ``update(result) ->
transitions`` and ``close() -> transitions`` (each with ``.type`` and ``.event``: the
``EventTracker`` of ``avgn_edge.events``), and adds one record per transition after the file's
own: ``{"path", "event": "new"|"update"|"end", **event}``. Wire it with e.g.
``events=functools.partial(make_tracker, settings)`` where ``make_tracker(settings, labels, camera)``
returns ``EventTracker(labels, settings, camera=camera)``; it must pickle, as Ray ships it to actors.
Today a file is one clip (T snippets spread over it: one decision); a per-window pass over long
recordings would feed the tracker one decision per stride instead, through the same hook.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import AvgnError, BackendError

log = logging.getLogger(__name__)


def clip_record(path, result, top: int = 3) -> dict:
    return {"path": str(path), **result.to_dict(top=top), "has_audio": result.audio_ok}


def file_records(rec, path, top: int = 3, events=None, strict: bool = False, keep_going: bool = False,
                 source=None) -> list[dict]:
    """The records of one file (named ``path``, read from ``source`` if given: a worker's absolute
    path): its decision (or why it failed), then its event records.

    A file that cannot be decoded is recorded as failed (``strict``: raised). An outside failure
    (``BackendError``: a remote backend down) and an unexpected one end a local run; with
    ``keep_going`` (an archive job) they are recorded too, the outside ones marked ``retry`` so
    that ``--resume`` tries them again."""
    try:
        result = rec.classify_clip(source or path)
    except BackendError as exc:
        if not keep_going:
            raise
        return [{"path": str(path), "error": str(exc), "retry": True}]
    except AvgnError as exc:
        if strict:
            raise
        return [{"path": str(path), "error": str(exc)}]
    except Exception as exc:                 # a decoder bug on one odd file must not end an archive job
        if not keep_going:
            raise
        log.exception("%s: unexpected failure", path)
        return [{"path": str(path), "error": f"internal error: {type(exc).__name__}: {exc}"}]
    out = [clip_record(path, result, top)]
    if events is not None:
        tracker = events(rec.labels, camera=str(path))
        for tr in [*tracker.update(result), *tracker.close()]:
            out.append({"path": str(path), "event": tr.type, **tr.event})
    return out


def human(record: dict, top: int = 3) -> str:
    """The record as the plain-text line of ``avgn-edge run`` (without --json)."""
    if "error" in record:
        return f"{record['path']}: ERROR {record['error']}"
    if "event" in record:
        return f"{record['path']}: event {record['event']} {record.get('label', '')}"
    tops = ", ".join(f"{t['label']} {t['score']:.2f}" for t in record["top"][:top])
    return f"{record['path']}: {tops}" + ("" if record["has_audio"] else "  (no audio: classified with silence)")


def read_done(path: str | os.PathLike) -> set[str]:
    """Paths that already have a final record in ``path`` (not those marked ``retry``). A last line
    cut short by a kill is dropped from the file, so appending continues on a clean line."""
    p = Path(path)
    if not p.is_file():
        return set()
    data = p.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        log.warning("%s: dropping a last line cut short (%d bytes)", p, len(data) - keep)
        with open(p, "r+b") as f:
            f.truncate(keep)
    done = set()
    for line in data[:keep].decode(errors="replace").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and "path" in r and "event" not in r and not r.get("retry"):
            done.add(r["path"])
    return done


class RecordWriter:
    """Appends records as JSON lines, flushed after each file (a kill loses at most the file being written)."""

    def __init__(self, path: str | os.PathLike | None, append: bool = False):
        self.f = open(path, "a" if append else "w") if path else None

    def write(self, records: list[dict]):
        if self.f is not None:
            self.f.write("".join(json.dumps(r) + "\n" for r in records))
            self.f.flush()

    def close(self):
        if self.f is not None:
            self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
