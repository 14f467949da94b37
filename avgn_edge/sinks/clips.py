"""Event clips with their sound, and snapshots with the patch boxes (Frigate's ``record`` / ``snapshots``).

    frames  -> a pre-roll ring of the last ``pre_capture`` s of frames and audio (bounded)
    new     -> the clip starts: the ring's frames from ``start - pre_capture`` on, then every
               frame until ``end + post_capture`` (at most ``max_seconds``), encoded as they
               come (H.264 + AAC, PyAV) into ``<id>.mp4.part``; a JPEG snapshot of the best
               decision's frame with its patch boxes (rewritten on each better ``update``)
    end     -> ``post_capture`` s later the file is closed and renamed to ``<id>.mp4``: a clip
               is complete or absent (a crash leaves only a ``.part``, removed at the next start)

Retention: files older than ``retain_days`` (or the label's own ``retain_labels[label]``) are
deleted at start and then at most once a minute. Frames are raw (the snapshot is annotated).
Retention and the crash cleanup touch only what this camera's sink wrote: the files listed in
its index, ``root/<camera>/.avgn-index.jsonl`` (one ``{"f": "<label>/<file>"}`` a line), never a
``.part`` of a writer still open, never another camera's folder, never a file the service did not
name (a record path pointed at a folder of your own videos loses none of them).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np

from .base import Sink
from .records import Media, safe

log = logging.getLogger("avgn_edge.sinks.clips")


def write_atomic(path: Path, data: bytes):
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


INDEX = ".avgn-index.jsonl"


class ClipIndex:
    """The files one camera's sink wrote, relative to its folder (``<label>/<name>.mp4|.jpg``)."""

    def __init__(self, folder: Path):
        self.folder, self.path = folder, folder / INDEX

    @staticmethod
    def _ours(rel: str) -> bool:
        parts = Path(rel).parts
        return (len(parts) == 2 and all(p == safe(p) and p not in (".", "..") for p in parts)
                and parts[1].endswith((".mp4", ".jpg")))

    def add(self, path: Path):
        rel = path.relative_to(self.folder).as_posix()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"f": rel}) + "\n")

    def entries(self) -> list[str]:
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out: dict[str, None] = {}                        # ordered, without repeats
        for line in lines:
            try:
                rel = json.loads(line).get("f")
            except (ValueError, AttributeError):
                continue
            if isinstance(rel, str) and self._ours(rel):
                out[rel] = None
        return list(out)

    def lists(self, rel: str) -> bool:
        """Whether this camera's sink wrote ``rel`` (``<label>/<file>``): what the web view may serve."""
        return self._ours(rel) and rel in self.entries()

    def keep(self, rels: list[str]):
        tmp = self.path.with_name(INDEX + ".tmp")
        tmp.write_text("".join(json.dumps({"f": r}) + "\n" for r in rels), encoding="utf-8")
        os.replace(tmp, self.path)


def _hold(folder: Path):
    """An exclusive lock on ``folder/.avgn-lock`` for the sink's life: a second instance (or stream)
    writing the same camera's folder is refused in one line instead of sharing its files."""
    import fcntl

    from ..errors import InputError
    f = open(folder / ".avgn-lock", "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InputError(f"{folder} is in use by another running instance (the same record path and camera)",
                         hint="give each instance its own record.path") from None
    return f


class PartWriter:
    """An MP4 (container ``c``) written into ``tmp`` (``path.part``); ``finish`` flushes its
    ``encoders`` and renames it to ``path``: a clip is complete or absent."""
    encoders: tuple = ()

    def finish(self) -> Path:
        for s in self.encoders:
            for p in s.encode():
                self.c.mux(p)
        self.c.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self):
        try:
            self.c.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class ClipWriter(PartWriter):
    """One MP4 (H.264 + AAC) written frame by frame into ``path.part``; ``finish`` renames it."""

    def __init__(self, path: Path, fps: float, sample_rate: int, size: tuple[int, int], t0: float):
        import av
        self.av, self.path, self.t0, self.sample_rate = av, path, t0, sample_rate
        self.tmp = path.with_name(path.name + ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rate = Fraction(fps).limit_denominator(1000)
        self.c = av.open(str(self.tmp), "w", format="mp4")
        self.v = self.c.add_stream("libx264", rate=self.rate, options={"preset": "veryfast", "crf": "23"})
        w, h = size
        self.v.width, self.v.height, self.v.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        self.a = self.c.add_stream("aac", rate=sample_rate, layout="mono")
        self.encoders = (self.v, self.a)
        self.last_pts, self.samples, self.t_end = -1, 0, t0

    def add(self, frame: np.ndarray, audio: np.ndarray | None, t: float):
        pts = int(round((t - self.t0) * self.rate))
        if pts <= self.last_pts:                       # same grid slot: keep the first
            return
        h, w = self.v.height, self.v.width
        if frame.shape[0] < h or frame.shape[1] < w:   # the source changed size: fit the clip's
            import cv2
            frame = cv2.resize(frame, (w, h))
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
        vf.pts, self.last_pts, self.t_end = pts, pts, t
        for p in self.v.encode(vf):
            self.c.mux(p)
        # the sound up to this frame: what came, or silence for a gap, so that picture and sound stay aligned
        want = int(round((t - self.t0) * self.sample_rate)) - self.samples
        if want <= 0:
            return
        wave = np.zeros(want, np.float32) if audio is None else np.asarray(audio, np.float32)[-want:]
        if len(wave) < want:
            wave = np.concatenate([np.zeros(want - len(wave), np.float32), wave])
        af = self.av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None]), format="fltp", layout="mono")
        af.sample_rate, af.pts = self.sample_rate, self.samples
        self.samples += want
        for p in self.a.encode(af):
            self.c.mux(p)



class ClipSink(Sink):
    """One camera's clips and snapshots (``media`` names the files); ``fps`` is the frame rate
    frames come at (the snippet rate), ``sample_rate`` the audio's."""

    name = "clips"
    wants_frames = True

    def __init__(self, media: Media, *, camera: str, fps: float, sample_rate: int, pre_capture: float = 5.0,
                 post_capture: float = 5.0, max_seconds: float = 300.0, retain_days: float | None = 10.0,
                 retain_labels: dict[str, float] | None = None):
        self.media, self.fps, self.sample_rate = media, fps, sample_rate
        self.pre, self.post, self.max_seconds = pre_capture, post_capture, max_seconds
        self.retain_days = retain_days
        self.retain_labels = {safe(k): v for k, v in (retain_labels or {}).items()}   # as on disk
        self.ring: deque = deque(maxlen=max(2, int(pre_capture * fps) + 2))
        self.open: dict[str, tuple[ClipWriter, dict, float | None]] = {}   # id -> (writer, event, stop at)
        self.clips = self.snapshots = self.deleted = self.failed = 0
        self._pruned_at = 0.0
        self.folder = media.root / safe(camera)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._held = _hold(self.folder)                  # one writer per camera folder, across processes
        self.index = ClipIndex(self.folder)
        for rel in self.index.entries():                 # what a crash left of ours: never a clip
            f = self.folder / rel
            part = f.with_name(f.name + ".part")
            if part.is_file() and not part.is_symlink():
                part.unlink(missing_ok=True)
        self.prune()

    # -- frames
    def frame(self, camera, frame, audio, t):
        self.ring.append((t, frame, audio))
        for eid, (w, ev, stop) in list(self.open.items()):
            if not getattr(w, "takes_frames", True):     # a clip copied from the record stream (remuxclips.py)
                continue
            if stop is not None and t > stop:
                self._finish(eid)
                continue
            w.add(frame, audio, t)
            if t - w.t0 >= self.max_seconds:
                log.warning("clip %s reached %d s: closed", eid, self.max_seconds)
                self._finish(eid)

    def _nearest(self, t: float):
        return min(self.ring, key=lambda x: abs(x[0] - t)) if self.ring else None

    # -- events
    def event(self, camera, tr):
        ev = tr.event
        if tr.type == "new" and self.media.clips and self.ring:
            self._start(ev)
        if tr.type in ("new", "update") and self.media.snapshots:
            self._snapshot(ev)
        if tr.type == "end" and ev["id"] in self.open:
            w, _, _ = self.open[ev["id"]]
            self.open[ev["id"]] = (w, ev, ev["end_time"] + self.post)

    def _start(self, ev: dict):
        t0 = ev["start_time"] - self.pre
        first = [x for x in self.ring if x[0] >= t0 - 1e-6] or [self.ring[-1]]
        h, w = first[0][1].shape[:2]
        try:
            path = self.media.clip(ev)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.index.add(path)                         # before the .part exists: a crash's is ours to remove
            writer = ClipWriter(path, self.fps, self.sample_rate, (w, h), first[0][0])
        except Exception as exc:
            self.failed += 1
            log.warning("clip %s: cannot start (%s)", ev["id"], exc)
            return
        self.open[ev["id"]] = (writer, ev, None)
        for t, frame, audio in first:
            writer.add(frame, audio, t)

    def _snapshot(self, ev: dict):
        import cv2
        near = self._nearest(ev.get("top_score_time") or ev["start_time"])
        if near is None:
            return
        path = self.media.snapshot(ev)
        path.parent.mkdir(parents=True, exist_ok=True)
        from .overlay import annotate_snapshot
        ok, jpg = cv2.imencode(".jpg", annotate_snapshot(near[1], ev)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
        if ok:
            if not path.exists():
                self.index.add(path)
            write_atomic(path, jpg.tobytes())
            self.snapshots += 1

    def _finish(self, eid: str):
        writer, ev, _ = self.open.pop(eid)
        try:
            path = writer.finish()
        except Exception as exc:
            self.failed += 1
            writer.abort()
            log.warning("clip %s: not written (%s)", eid, exc)
            return
        self.clips += 1
        log.info("clip %s: %s (%.1f s)", ev["label"], path, writer.t_end - writer.t0)
        if time.monotonic() - self._pruned_at > 60:
            self.prune()

    # -- retention
    def prune(self, now: float | None = None):
        """Delete this camera's clips and snapshots past their retention (by the file's age); only
        files its index lists, never one being written."""
        self._pruned_at = time.monotonic()
        now = time.time() if now is None else now
        writing = {w.path for w, _, _ in self.open.values()}
        keep = []
        for rel in self.index.entries():
            f = self.folder / rel
            if f in writing:
                keep.append(rel)
                continue
            try:
                st = f.lstat()
            except FileNotFoundError:
                continue                                  # gone (or never finished): dropped from the index
            days = self.retain_labels.get(rel.split("/")[0], self.retain_days)
            if days is not None and now - st.st_mtime > days * 86400 and not f.is_symlink():
                f.unlink(missing_ok=True)
                self.deleted += 1
            else:
                keep.append(rel)
        try:
            self.index.keep(keep)
        except OSError as exc:
            log.warning("clips: cannot rewrite the index %s (%s)", self.index.path, exc)

    def counters(self) -> dict[str, int]:
        return {"clips": self.clips, "snapshots": self.snapshots, "clips_deleted": self.deleted,
                "clips_failed": self.failed}

    def finish_open(self):
        """Finish the open clips with what they have (no frames will come: the stream stopped,
        ended or was disabled); the sink stays usable."""
        for eid in list(self.open):
            self._finish(eid)

    def close(self):
        try:
            self.finish_open()
        finally:
            self._held.close()                           # the folder's lock goes with the file
