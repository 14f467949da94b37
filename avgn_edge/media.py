"""Reading and writing audio-visual files with PyAV (frames RGB uint8, audio mono float32).

A clip is turned into T snippets the same way everywhere (training data from files,
``avgn-edge run``, ``Recognizer.classify_clip``): the file is cut into T equal segments,
snippet i is the last frame before the end of segment i, with the audio window that ends
there - the pairing the live snippet clock makes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SourceError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"}


@dataclass
class Snippets:
    frames: np.ndarray       # [T, H, W, 3] uint8 RGB
    audio: np.ndarray        # [T, N] float32 at the model's rate
    times: np.ndarray        # [T] seconds from the first frame
    has_audio: bool


@dataclass
class Segments:
    """T segments with C candidate frames each (evenly spread; the last is the test frame)."""
    frames: np.ndarray       # [T, C, H, W, 3] uint8 RGB
    audio: np.ndarray        # [T, C, N] float32: the window ending at each candidate's sub-segment end
    times: np.ndarray        # [T, C] seconds from the first frame
    has_audio: bool


def _av():
    import av  # base dependency
    # No Python logging callback: with frame-threaded decoding it can deadlock on the GIL
    # when a decoder is freed while a frame thread logs (PyAV #751, #909; reproduced here).
    av.logging.set_level(None)
    return av


def read_snippets(path: str | os.PathLike, num_snippets: int, sample_rate: int,
                  window: float) -> Snippets:
    """Decode ``path`` and return T snippets (frames + the audio windows ending at them)."""
    s = read_segments(path, num_snippets, sample_rate, window)
    if not s.has_audio:
        log.warning("%s has no audio track: classifying with silence", path)
    return Snippets(s.frames[:, -1], s.audio[:, -1], s.times[:, -1], s.has_audio)


def read_segments(path: str | os.PathLike, num_snippets: int, sample_rate: int, window: float,
                  candidates: int = 1, start: float | None = None, end: float | None = None) -> Segments:
    """Decode ``path`` (or its part from ``start`` to ``end`` seconds) cut into T segments.

    The frame timestamps are read first from the packets (no decoding), so only the chosen
    frames are kept while decoding: memory does not grow with the length of the file, and a
    segment of a long recording is reached by seeking, not by decoding what precedes it.
    """
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path} has no video stream")
            vstream = container.streams.video[0]
            t0 = (container.start_time or 0) / 1e6
            lo = None if start is None else t0 + start
            hi = None if end is None else t0 + end
            pts = _packet_pts(container, vstream, lo, hi)
        with av.open(str(path)) as container:
            vstream = container.streams.video[0]
            vstream.thread_type = "AUTO"
            tb = float(vstream.time_base or 0)
            if pts and None not in pts:
                pts = sorted(pts)
                times = np.asarray(pts, np.float64) * tb
                pick, ends = _plan(times, num_snippets, candidates)
                wanted = {pts[j] for j in pick.flat}
                if lo:
                    container.seek(int(lo / tb), stream=vstream)
                kept = {}
                for f in container.decode(vstream):
                    if f.pts in wanted:
                        kept[f.pts] = f.to_ndarray(format="rgb24")
                        if len(kept) == len(wanted):
                            break
                frames = [kept.get(pts[j]) for j in pick.flat]
            else:                      # no packet timestamps: decode everything, then pick
                decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(vstream)
                           if f.time is not None and (lo is None or f.time >= lo) and (hi is None or f.time < hi)]
                times = np.asarray([t for t, _ in decoded], np.float64)
                pick, ends = _plan(times, num_snippets, candidates) if len(times) else (np.zeros(0, int), None)
                frames = [decoded[j][1] for j in pick.flat]
        audio, audio_start = read_audio(path, sample_rate, start=None if lo is None else lo - window, end=hi)
    except SourceError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise SourceError(f"cannot decode {path}: {exc}") from None
    if not frames or any(f is None for f in frames):
        what = "" if start is None else f" between {start:g} and {end:g} s"
        raise SourceError(f"{path} has no decodable video frames{what}")
    n = int(round(window * sample_rate))
    windows = np.zeros((*ends.shape, n), np.float32)
    if audio is not None:
        for i, stop in np.ndenumerate(np.round((ends - audio_start) * sample_rate).astype(np.int64)):
            seg = audio[max(stop - n, 0):max(stop, 0)]
            windows[i][n - len(seg):] = seg
    stacked = np.stack(frames).reshape(*ends.shape, *frames[0].shape)
    return Segments(stacked, windows, ends - times[0], audio is not None)


def _packet_pts(container, vstream, lo: float | None, hi: float | None) -> list:
    """Presentation timestamps of the video packets whose time is in [lo, hi)."""
    tb = float(vstream.time_base or 0)
    if lo is None and hi is None:
        return [p.pts for p in container.demux(vstream) if p.size]
    if lo and tb:
        container.seek(int(lo / tb), stream=vstream)
    out = []
    for p in container.demux(vstream):
        if not p.size:
            continue
        if p.dts is not None and hi is not None and p.dts * tb >= hi:
            break                      # decode order: every later packet is later still
        if p.pts is None:
            return [None]
        if (lo is None or p.pts * tb >= lo) and (hi is None or p.pts * tb < hi):
            out.append(p.pts)
    return out


def _plan(times: np.ndarray, num_snippets: int, candidates: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The file cut into T equal segments, each into C equal parts: (index of the last frame
    strictly before each part's end [T, C], the part ends in seconds [T, C])."""
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    duration = times[-1] - times[0] + period
    parts = np.arange(num_snippets)[:, None] + (np.arange(candidates)[None] + 1) / candidates
    ends = times[0] + duration * parts / num_snippets        # last column: the segment ends
    # a quarter-frame guard for pts rounding
    pick = np.clip(np.searchsorted(times, ends - 0.25 * period, side="left") - 1, 0, len(times) - 1)
    return pick, ends


def read_audio(path: str | os.PathLike, sample_rate: int, start: float | None = None,
               end: float | None = None) -> tuple[np.ndarray | None, float]:
    """(mono float32 samples at ``sample_rate``, time of the first sample) or (None, 0).

    ``start``/``end`` (stream seconds) bound what is decoded: a seek, then decoding stops."""
    av = _av()
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None, 0.0
        stream = container.streams.audio[0]
        if start is not None and start > 0 and stream.time_base:
            container.seek(int(start / float(stream.time_base)), stream=stream)
        rs = av.AudioResampler(format="flt", layout="mono", rate=sample_rate, frame_size=sample_rate)
        chunks, t0 = [], None
        for frame in container.decode(stream):
            if t0 is None:
                t0 = frame.time or 0.0
            chunks += [o.to_ndarray()[0] for o in rs.resample(frame)]
            if end is not None and frame.time is not None and frame.time > end:
                break
        chunks += [o.to_ndarray()[0] for o in rs.resample(None)]
    if not chunks:
        return None, 0.0
    return np.concatenate(chunks).astype(np.float32), float(t0)


def write_video(path: str | os.PathLike, frames, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = 16000, crf: int = 14) -> Path:
    """Write RGB frames (and mono float audio) as H.264 + AAC MP4, atomically."""
    av = _av()
    path = Path(path)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=int(round(fps)), options={"crf": str(crf), "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_s = None
        if audio is not None:
            a_s = out.add_stream("aac", rate=sample_rate, layout="mono")
        for img in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if a_s is not None:
            samples = np.clip(np.asarray(audio, np.float32), -1, 1)
            step = 1024
            for i in range(0, len(samples), step):
                chunk = samples[i:i + step]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                af.sample_rate = sample_rate
                af.pts = i
                for pkt in a_s.encode(af):
                    out.mux(pkt)
            for pkt in a_s.encode():
                out.mux(pkt)
    os.replace(tmp, path)
    return path


def list_videos(folder: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
