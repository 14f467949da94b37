"""The live loop's frame sinks: a display window and the annotated MP4. They take the rendered
frames on the caller's thread (a GUI window must), so they are context managers, not workers.

    with Mp4Sink("out.mp4", fps=12) as mp4:
        mp4.write_frame(annotated)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import SourceError


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
