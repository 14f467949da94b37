"""Video files (or segments of them) as training/evaluation samples, decoded on demand.

Each item becomes T snippets the way ``avgn-edge run`` and the live clock make them (the
last frame of each of T equal segments, the audio window ending there), frames resized to
the model's square frame. With ``candidates`` C > 1 each segment also offers C-1 earlier
frames, for the random-frame-per-segment augmentation. A ``SnippetCache`` (cache.py), when
given, is read first and filled on a miss, so a clip is decoded once, not once per epoch.

Ground truth (labels.json) is read as event spans in seconds (spans.py) and mapped onto
the snippet times of this model's T, so a folder written for one geometry serves another.

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
from .spans import legacy_snippets, snippets_of, spans_of

log = logging.getLogger(__name__)


class VideoClips:
    def __init__(self, items: list[Item], cfg, labels: tuple[str, ...], candidates: int = 1, cache=None):
        check_labels(items, labels, "the data")
        self.items, self.cfg, self.labels = list(items), cfg, tuple(labels)
        self.candidates, self.cache = candidates, cache
        self._spans = [_truth_spans(i, cfg.num_snippets) for i in self.items]
        self.has_ground_truth = all(s is not None for s in self._spans)
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
            frames, audio, has_audio, times = seg
            T, C = frames.shape[:2]
            col = rng.integers(C, size=T) if rng is not None and C > 1 else np.full(T, C - 1)
            item, truth = self.items[k], self._spans[k]
            events = boxes = None
            if isinstance(truth, tuple):                       # an old labels.json for this T
                events, boxes = truth
            elif truth is not None:
                events, boxes = snippets_of(truth, times, self.cfg.frame_size)
            rows = np.arange(T)
            return Sample(frames[rows, col], audio[rows, col], self.labels.index(item.label), events, boxes,
                          has_audio, str(item.path), own=j == 0)
        raise SourceError(f"none of the {n} videos of the data can be decoded")

    def segments(self, k: int):
        """(frames [T,C,S,S,3], audio [T,C,N], has_audio, snippet times [T] in s) of item ``k``,
        or None if it cannot be decoded."""
        if k in self._bad:
            return None
        if self.cache is not None:
            got = self.cache.get(k)
            if got is not None:
                return got if got is not False else self._mark_bad(k, None)
        try:
            frames, audio, has_audio, times = self.decode(k)
        except SourceError as exc:
            if self.cache is not None:
                self.cache.put_bad(k)
            return self._mark_bad(k, exc)
        if self.cache is not None:
            self.cache.put(k, frames, audio, has_audio, times)
        return frames, audio, has_audio, times

    def decode(self, k: int):
        cfg, item = self.cfg, self.items[k]
        s = read_segments(item.path, cfg.num_snippets, cfg.sample_rate, cfg.audio_window, self.candidates,
                          item.start, item.end)
        if not s.has_audio and k not in self._silent:
            (log.debug if self._silent else log.warning)(
                "%s has no audio track: its snippets get silence%s", item.path,
                "" if self._silent else " (more such files: at debug level)")
            self._silent.add(k)
        return fit_frames(s.frames, cfg.frame_size), s.audio, s.has_audio, s.times[:, -1]

    def _mark_bad(self, k: int, exc):
        if exc is not None:
            log.warning("skipping %s", exc)
        self._bad.add(k)
        self.skipped.append(str(self.items[k].path))
        return None


def _truth_spans(item: Item, num_snippets: int):
    """An item's event spans (list), an old entry's (snippets, boxes) for this T, or None."""
    if item.truth is None:
        return None
    wh = None
    if "events" not in item.truth and any(b is not None for b in item.truth.get("boxes") or []):
        from ..media import video_size
        wh = video_size(item.path)
    spans = spans_of(item.truth, wh)
    if spans is None:
        spans = legacy_snippets(item.truth, num_snippets)
        if spans is None and "event_snippets" in item.truth:
            log.warning("%s: its labels.json entry gives event snippets for another T and no times: "
                        "no ground truth for it", item.path)
    return spans


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
