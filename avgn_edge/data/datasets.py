"""Datasets by URI: ``synth:seed=S,clips=N,...`` or a folder of videos (numpy only).

A folder is either what ``avgn-edge synth`` writes (MP4 files + labels.json with the
ground truth) or one sub-folder per class of video files. A ``background`` class (label
or sub-folder: videos where nothing of interest happens) becomes the model's no-event
outcome, always its last label; a folder without one trains as before, and is told once
that its events will fire on anything. Every item is a ``Sample``: T snippet frames,
their audio windows, the label and, where known, the ground truth.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import BACKGROUND
from ..errors import InputError, SourceError
from ..media import list_videos, read_snippets
from . import synth

log = logging.getLogger(__name__)


@dataclass
class Sample:
    frames: np.ndarray                      # [T, H, W, 3] uint8 RGB
    audio: np.ndarray                       # [T, N] float32
    label: int
    event_snippets: np.ndarray | None = None
    boxes: np.ndarray | None = None         # [T, 4] in frame pixels, NaN outside the event
    has_audio: bool = True
    path: str | None = None


_told_no_background: set[str] = set()


class SynthDataset:
    """Clips of the benchmark; ``labels`` are the 12 event labels + background, or the 12
    alone when ``spec.background`` is 0 (for a model without the background outcome)."""

    def __init__(self, spec: synth.SynthSpec, with_background: bool = True):
        if not with_background and spec.background > 0:
            raise InputError("this model has no background label, so it cannot learn clips without an event",
                             hint="add background=0 to the synth: data, or train a synth preset (it has one)")
        self.spec = spec
        self.labels = synth.CLASSES if with_background else synth.LABELS
        self.has_ground_truth = True

    def __len__(self):
        return self.spec.clips

    def __getitem__(self, i: int) -> Sample:
        c = synth.make_clip(self.spec, i)
        return Sample(c.frames, c.audio, c.label, c.event_snippets, c.boxes)


class VideoFolder:
    """Videos with labels from labels.json or from class sub-folders.

    A file without an audio track gives silence and ``has_audio=False``; a file that cannot
    be decoded is skipped with a warning and counted in ``skipped`` (the loader then
    serves the next good file, so a DataLoader never sees the failure).
    """

    def __init__(self, root: str | Path, cfg, labels: tuple[str, ...] | None = None):
        self.root = Path(root)
        self.cfg = cfg
        self.skipped: list[str] = []
        index = self.root / "labels.json"
        if index.is_file():
            entries = json.loads(index.read_text())
            names = labels or _label_order({e["label"] for e in entries})
            self.items = [(self.root / e["file"], e["label"], e) for e in entries]
            self.has_ground_truth = all("event_snippets" in e for e in entries)
        else:
            classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            names = labels or _label_order(classes)
            self.items = [(v, c, {}) for c in classes for v in list_videos(self.root / c)]
            self.has_ground_truth = False
        if not self.items:
            raise InputError(f"no videos found in {self.root}",
                             hint="expected labels.json or one sub-folder of videos per class")
        unknown = sorted({lab for _, lab, _ in self.items} - set(names))
        if unknown:
            raise InputError(f"labels in {self.root} that the model does not know: {unknown[:5]}")
        self.labels = tuple(names)
        self._bad: set[int] = set()
        if BACKGROUND not in self.labels and str(self.root) not in _told_no_background:
            _told_no_background.add(str(self.root))
            log.warning("%s has no %s/ class: the model will have no 'nothing happening' outcome, so its "
                        "events will fire on anything (add a %s/ folder of videos where nothing of interest "
                        "happens)", self.root, BACKGROUND, BACKGROUND)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        for j in range(len(self.items)):
            k = (i + j) % len(self.items)
            if k in self._bad:
                continue
            path, label, gt = self.items[k]
            try:
                s = read_snippets(path, self.cfg.num_snippets, self.cfg.sample_rate, self.cfg.audio_window)
            except SourceError as exc:
                log.warning("skipping %s", exc)
                self._bad.add(k)
                self.skipped.append(str(path))
                continue
            boxes = np.asarray(gt["boxes"], np.float32) if "boxes" in gt else None
            events = np.asarray(gt["event_snippets"]) if "event_snippets" in gt else None
            return Sample(s.frames, s.audio, self.labels.index(label), events, boxes, s.has_audio, str(path))
        raise SourceError(f"none of the {len(self.items)} videos in {self.root} can be decoded")


def _label_order(names) -> tuple[str, ...]:
    """Class names sorted, with ``background`` (if any) last: the convention of every model."""
    names = set(names)
    return tuple(sorted(names - {BACKGROUND})) + ((BACKGROUND,) if BACKGROUND in names else ())


def open_dataset(uri: str, cfg):
    """``synth:...`` (knobs as in ``--data synth:seed=3,clips=500,noise=0.1-0.6,background=0.3``) or a folder."""
    if uri == "synth" or uri.startswith("synth:"):
        knobs = synth.parse_knobs(uri.partition(":")[2])
        with_bg = cfg.background_index is not None
        if not with_bg:
            knobs.setdefault("background", 0.0)
        ds = SynthDataset(synth.SynthSpec.for_model(cfg, **knobs), with_background=with_bg)
    else:
        path = Path(uri)
        if not path.is_dir():
            raise InputError(f"--data {uri!r} is neither synth:... nor a folder")
        ds = VideoFolder(path, cfg, labels=cfg.labels)
    if tuple(ds.labels) != tuple(cfg.labels):
        raise InputError(f"the data's labels {list(ds.labels)[:4]}... differ from the model's")
    return ds
