"""Video files (or segments of them) as training/evaluation samples, decoded on demand.

Each item becomes T snippets the way ``avgn-edge run`` and the live clock make them (the
last frame of each of T equal segments, the audio window ending there), frames resized to
the model's square frame. With ``candidates`` C > 1 each segment also offers C-1 earlier
frames, for the random-frame-per-segment augmentation. A ``SnippetCache`` (cache.py), when
given, is read first and filled on a miss, so a clip is decoded once, not once per epoch.

A file that cannot be decoded is skipped with a warning and counted in ``skipped`` (the
next good item is served, so a DataLoader never sees the failure); a file without an audio
track gives silence and ``has_audio=False`` (the AdaMML convention).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..errors import SourceError
from ..media import read_segments
from .index import Item, check_labels
from .sample import Sample

log = logging.getLogger(__name__)


class VideoClips:
    def __init__(self, items: list[Item], cfg, labels: tuple[str, ...], candidates: int = 1, cache=None):
        check_labels(items, labels, "the data")
        self.items, self.cfg, self.labels = list(items), cfg, tuple(labels)
        self.candidates, self.cache = candidates, cache
        self.has_ground_truth = all(i.truth is not None and "event_snippets" in i.truth for i in self.items)
        self.skipped: list[str] = []
        self._bad: set[int] = set()
        self._silent: set[int] = set()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i: int):
        return self.read(i)

    def groups(self) -> list[tuple[str, str]]:
        """(recording, label) per item, for a validation split that keeps recordings whole."""
        return [(it.group, it.label) for it in self.items]

    def read(self, i: int, rng: np.random.Generator | None = None):
        """Item ``i`` (or the next decodable one): the test frame of each segment, or with
        ``rng`` a random one of its C candidates."""
        n = len(self.items)
        for j in range(n):
            k = (i + j) % n
            seg = self.segments(k)
            if seg is None:
                continue
            frames, audio, has_audio = seg
            T, C = frames.shape[:2]
            col = rng.integers(C, size=T) if rng is not None and C > 1 else np.full(T, C - 1)
            item = self.items[k]
            gt = item.truth or {}
            boxes = None
            if "boxes" in gt:
                boxes = np.asarray([b if b is not None else [np.nan] * 4 for b in gt["boxes"]], np.float32)
            events = np.asarray(gt["event_snippets"]) if "event_snippets" in gt else None
            rows = np.arange(T)
            return Sample(frames[rows, col], audio[rows, col], self.labels.index(item.label), events, boxes,
                          has_audio, str(item.path))
        raise SourceError(f"none of the {n} videos of the data can be decoded")

    def segments(self, k: int):
        """(frames [T,C,S,S,3], audio [T,C,N], has_audio) of item ``k``, or None if it cannot be decoded."""
        if k in self._bad:
            return None
        if self.cache is not None:
            got = self.cache.get(k)
            if got is not None:
                return got if got is not False else self._mark_bad(k, None)
        try:
            frames, audio, has_audio = self.decode(k)
        except SourceError as exc:
            if self.cache is not None:
                self.cache.put_bad(k)
            return self._mark_bad(k, exc)
        if self.cache is not None:
            self.cache.put(k, frames, audio, has_audio)
        return frames, audio, has_audio

    def decode(self, k: int):
        cfg, item = self.cfg, self.items[k]
        s = read_segments(item.path, cfg.num_snippets, cfg.sample_rate, cfg.audio_window, self.candidates,
                          item.start, item.end)
        if not s.has_audio and k not in self._silent:
            (log.debug if self._silent else log.warning)(
                "%s has no audio track: its snippets get silence%s", item.path,
                "" if self._silent else " (more such files: at debug level)")
            self._silent.add(k)
        return fit_frames(s.frames, cfg.frame_size), s.audio, s.has_audio

    def _mark_bad(self, k: int, exc):
        if exc is not None:
            log.warning("skipping %s", exc)
        self._bad.add(k)
        self.skipped.append(str(self.items[k].path))
        return None


def fit_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """[..., H, W, 3] -> [..., size, size, 3]: stretched to the model's square frame, as the
    runtime treats any camera frame (area filter when shrinking)."""
    h, w = frames.shape[-3:-1]
    if (h, w) == (size, size):
        return frames
    interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
    flat = frames.reshape(-1, h, w, 3)
    out = np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in flat])
    return out.reshape(*frames.shape[:-3], size, size, 3)
