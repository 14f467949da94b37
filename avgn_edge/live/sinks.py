"""Sinks: a display window, an annotated MP4, and JSON-lines events. All are context managers.

    with Mp4Sink("out.mp4", fps=12) as mp4, EventsSink("events.jsonl", labels) as ev:
        mp4.write_frame(annotated); ev.write_result(result)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import SourceError
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
    """JSON lines: one ``decision`` record per Result, plus ``onset``/``offset`` records when a
    label's score rises to ``threshold`` (as the top label) and when it falls below it."""

    def __init__(self, path: str | os.PathLike, threshold: float = 0.5, top: int = 3):
        self.path, self.threshold, self.top = Path(path), threshold, top
        self.f = open(self.path, "w")
        self.active: dict | None = None          # {"label", "t", "peak"}
        self.onsets = 0

    def _write(self, record: dict):
        self.f.write(json.dumps(record) + "\n")

    def write_result(self, r: Result):
        self._write({"type": "decision", **r.to_dict(top=self.top)})
        label, score = r.top(1)[0]
        if self.active and (label != self.active["label"] or score < self.threshold):
            self._offset(r.t)
        if self.active is None and score >= self.threshold:
            self.active = {"label": label, "t": r.t, "peak": score}
            self.onsets += 1
            self._write({"type": "onset", "label": label, "t": round(r.t, 4), "score": round(score, 4)})
        elif self.active:
            self.active["peak"] = max(self.active["peak"], score)
        self.f.flush()

    def _offset(self, t: float):
        a = self.active
        self._write({"type": "offset", "label": a["label"], "t": round(t, 4), "onset": round(a["t"], 4),
                     "duration": round(t - a["t"], 4), "peak": round(a["peak"], 4)})
        self.active = None

    def close(self, t: float | None = None):
        if self.active and t is not None:
            self._offset(t)
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.f.closed:
            self.close()
