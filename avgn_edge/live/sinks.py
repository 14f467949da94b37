"""Sinks: a display window, an annotated MP4, and JSON-lines events. All are context managers.

    with Mp4Sink("out.mp4", fps=12) as mp4, EventsSink("events.jsonl") as ev:
        mp4.write_frame(annotated); ev.write_result(result); ev.write_event(transition)

Frame sinks take ``write_frame``; result sinks take ``write_result`` (every decision) and
``write_event`` (every transition of the event tracker, avgn_edge/events).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import SourceError
from ..events.tracker import Transition
from ..runtime.result import Result


class DisplaySink:
    """An OpenCV window. Needs an OpenCV with a GUI (opencv-python, JetPack's OpenCV)."""

    def __init__(self, title: str = "avgn-edge"):
        import cv2
        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SourceError("this OpenCV build has no GUI (opencv-python-headless)",
                              hint="run with --headless (and --save out.mp4), or pip install opencv-python") from None
        self.closed = False

    def write_frame(self, rgb: np.ndarray):
        self.cv2.imshow(self.title, rgb[..., ::-1])
        if self.cv2.waitKey(1) & 0xFF in (27, ord("q")):
            self.closed = True

    def close(self):
        self.cv2.destroyWindow(self.title)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Mp4Sink:
    """Annotated frames -> H.264 MP4, written as they come (PyAV)."""

    def __init__(self, path: str | os.PathLike, fps: float):
        import av
        self.av, self.path, self.fps = av, Path(path), max(1, int(round(fps)))
        self.container = self.stream = None
        self.frames = 0

    def write_frame(self, rgb: np.ndarray):
        if self.container is None:
            self.container = self.av.open(str(self.path), "w")
            self.stream = self.container.add_stream("libx264", rate=self.fps, options={"preset": "veryfast", "crf": "20"})
            h, w = rgb.shape[:2]
            self.stream.width, self.stream.height, self.stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:self.stream.height, :self.stream.width]),
                                                format="rgb24")
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)
        self.frames += 1

    def close(self):
        if self.container is not None:
            for pkt in self.stream.encode():
                self.container.mux(pkt)
            self.container.close()
            self.container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventsSink:
    """JSON lines: one ``decision`` record per Result, and the event tracker's transitions:
    ``onset`` (new: label, t = start time, score), ``update`` (a higher top score, with its
    evidence) and ``offset`` (end: label, t = last heard, onset, duration, peak), each with
    the event's ``id``."""

    def __init__(self, path: str | os.PathLike, top: int = 3):
        self.path, self.top = Path(path), top
        try:
            self.f = open(self.path, "w")
        except OSError as exc:
            raise SourceError(f"cannot write the events file {self.path}: {exc.strerror}") from None

    def _write(self, record: dict):
        self.f.write(json.dumps(record) + "\n")

    def write_result(self, r: Result):
        self._write({"type": "decision", **r.to_dict(top=self.top)})
        self.f.flush()

    def write_event(self, tr: Transition):
        e = tr.event
        if tr.type == "new":
            self._write({"type": "onset", "label": e["label"], "t": round(e["start_time"], 4),
                         "score": round(e["score"], 4), "id": e["id"], "camera": e["camera"],
                         "evidence": e["evidence"]})
        elif tr.type == "update":
            self._write({"type": "update", "label": e["label"], "t": round(tr.t, 4), "score": round(e["score"], 4),
                         "top_score": round(e["top_score"], 4), "id": e["id"], "evidence": e["evidence"]})
        else:
            self._write({"type": "offset", "label": e["label"], "t": round(e["end_time"], 4),
                         "onset": round(e["start_time"], 4), "duration": round(e["end_time"] - e["start_time"], 4),
                         "peak": round(e["top_score"], 4), "id": e["id"]})
        self.f.flush()

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.f.closed:
            self.close()
