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

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".3gp", ".flv",
                  ".wmv", ".asf", ".mts", ".m2ts", ".vob", ".mxf"}


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

    The segment ends are planned from the packets' timestamps (demuxing, no decoding); frames
    are then picked by their *decoded* timestamps - the last frame before each end - as they
    come, so memory does not grow with the length of the file, a part of a long recording is
    reached by seeking, and packets that never become frames (edit lists, stream-copy cuts,
    B-frames whose references were cut away) cannot leave a segment without a frame.
    """
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"{path} is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path} has no video stream")
            vstream = container.streams.video[0]
            t0 = (container.start_time or 0) / 1e6
            lo = None if start is None else t0 + start
            hi = None if end is None else t0 + end
            planned = _packet_times(container, vstream, lo, hi)
        with av.open(str(path)) as container:
            vstream = container.streams.video[0]
            vstream.thread_type = "AUTO"
            if lo:
                container.seek(int(lo / float(vstream.time_base)), stream=vstream)
            frames = _decoded(container.decode(vstream), lo, hi)
            if planned is not None:
                times, picked = _pick(frames, *_ends(planned, num_snippets, candidates))
            else:                      # no packet timestamps: decode everything, then pick
                decoded = [(t, rgb(f)) for t, f in frames]
                picked, times = [], np.asarray([t for t, _ in decoded], np.float64)
                if len(times):
                    ends, guard = _ends(times, num_snippets, candidates)
                    pick = np.clip(np.searchsorted(times, ends - guard, side="left") - 1, 0, len(times) - 1)
                    picked = [decoded[j][1] for j in pick.flat]
                    times = np.concatenate([times[:1], ends.ravel()])
            audio, audio_start = read_audio(path, sample_rate, start=None if lo is None else lo - window, end=hi)
    except SourceError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise SourceError(f"cannot decode {path}: {_first_line(exc)}") from None
    if not picked:
        what = "" if start is None else f" between {start:g} and {end:g} s"
        raise SourceError(f"{path} has no decodable video frames{what}")
    first, ends = times[0], times[1:].reshape(num_snippets, candidates)
    n = int(round(window * sample_rate))
    windows = np.zeros((*ends.shape, n), np.float32)
    if audio is not None:
        for i, stop in np.ndenumerate(np.round((ends - audio_start) * sample_rate).astype(np.int64)):
            seg = audio[max(stop - n, 0):max(stop, 0)]
            windows[i][n - len(seg):] = seg
    stacked = np.stack(picked).reshape(*ends.shape, *picked[0].shape)
    return Segments(stacked, windows, ends - first, audio is not None)


def _first_line(exc) -> str:
    """An FFmpeg error's own words (not its errno and path), or the exception's first line."""
    text = getattr(exc, "strerror", None) or str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def rgb(frame) -> np.ndarray:
    """A decoded frame as RGB uint8, turned upright where the file says how (phone videos
    carry a display rotation; the decoder does not apply it)."""
    img = frame.to_ndarray(format="rgb24")
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90)) % 4
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def _decoded(frames, lo: float | None, hi: float | None):
    """(time, frame) of the decoded frames in [lo, hi); a frame without a timestamp (some AVI
    and raw streams) gets the previous one's plus the smallest step seen so far."""
    last, step = None, None
    for f in frames:
        t = f.time
        if t is None:
            t = 0.0 if last is None else last + (step or 1 / 30)
        elif last is not None and t - last > 1e-6:
            step = t - last if step is None else min(step, t - last)
        if hi is not None and t >= hi:
            return
        if lo is None or t >= lo:
            last = t
            yield t, f


def _pick(frames, ends: np.ndarray, guard: float):
    """(first frame time followed by the flat ends, picked RGB frames): for each end, the last
    decoded frame strictly before it (less ``guard``); ends before the first frame take the first."""
    flat = ends.ravel()
    order = np.argsort(flat, kind="stable")
    picked: list = [None] * len(flat)
    first, prev, prev_img, k = None, None, None, 0
    for t, f in frames:
        if first is None:
            first = t
        while k < len(order) and t >= flat[order[k]] - guard:
            if prev is None:           # an end before the first frame: the first frame it is
                prev, prev_img = f, rgb(f)
            if prev_img is None:
                prev_img = rgb(prev)
            picked[order[k]] = prev_img
            k += 1
        if k == len(order):
            break
        prev, prev_img = f, None
    if prev is None:
        return np.zeros(1), []
    for j in order[k:]:                 # ends after the last frame: the last frame
        if prev_img is None:
            prev_img = rgb(prev)
        picked[j] = prev_img
    return np.concatenate([[first], flat]), picked


def _packet_times(container, vstream, lo: float | None, hi: float | None) -> np.ndarray | None:
    """Sorted presentation times (s) of the video packets in [lo, hi) that become frames (not
    the ones an edit list discards), or None when packets carry no timestamps."""
    tb = float(vstream.time_base or 0)
    if not tb:
        return None
    if lo:
        container.seek(int(lo / tb), stream=vstream)
    out = []
    for p in container.demux(vstream):
        if not p.size or p.is_discard or p.is_corrupt:
            continue
        if p.dts is not None and hi is not None and p.dts * tb >= hi:
            break                      # decode order: every later packet is later still
        if p.pts is None:
            return None
        t = p.pts * tb
        if (lo is None or t >= lo) and (hi is None or t < hi):
            out.append(t)
    return np.sort(np.asarray(out, np.float64)) if out else None


def _ends(times: np.ndarray, num_snippets: int, candidates: int = 1) -> tuple[np.ndarray, float]:
    """The file cut into T equal segments, each into C equal parts: (the part ends in seconds
    [T, C], last column the segment ends; a quarter-frame guard for timestamp rounding)."""
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    duration = times[-1] - times[0] + period
    parts = np.arange(num_snippets)[:, None] + (np.arange(candidates)[None] + 1) / candidates
    return times[0] + duration * parts / num_snippets, 0.25 * period


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


def video_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of the first video stream, or None when it cannot be read."""
    av = _av()
    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0] if c.streams.video else None
            return (vs.width, vs.height) if vs is not None and vs.width else None
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def write_video(path: str | os.PathLike, frames, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = 16000, crf: int = 14, x264_params: str = "") -> Path:
    """Write RGB frames (and mono float audio) as H.264 + AAC MP4, atomically. ``x264_params``:
    extra encoder settings ("bframes=0:keyint=10")."""
    av = _av()
    path = Path(path)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), "w") as out:
        opts = {"crf": str(crf), "preset": "veryfast", **({"x264-params": x264_params} if x264_params else {})}
        vs = out.add_stream("libx264", rate=int(round(fps)), options=opts)
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
