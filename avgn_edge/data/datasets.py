"""Datasets by URI: ``synth:seed=S,clips=N,...``, a folder of videos or a path,label list.

Folders and lists are read by index.py (labels.json as ``avgn-edge synth`` writes it, one
sub-folder per class, or a CSV/JSON of path,label[,start,end]) and decoded by videos.py,
optionally through the snippet cache (cache.py). A ``background`` class (label or
sub-folder: videos where nothing of interest happens) becomes the model's no-event
outcome, always its last label; data without one trains as before, and is told once that
its events will fire on anything. Every item is a ``Sample``: T snippet frames, their
audio windows, the label and, where known, the ground truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..config import BACKGROUND
from ..errors import InputError
from . import synth
from .index import declared_labels, is_index, labels_of, read_index

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
    own: bool = True                        # False: the next good clip, in an undecodable file's place


_told_no_background: set[str] = set()


class SynthDataset:
    """The benchmark's clips, labelled by name with ``labels`` (default: the 12 event labels +
    background); a model without ``background`` takes only clips with an event."""

    def __init__(self, spec: synth.SynthSpec, labels: tuple[str, ...] | None = None):
        self.spec = spec
        self.labels = tuple(labels or synth.CLASSES)
        if BACKGROUND not in self.labels and spec.background > 0:
            raise InputError("this model has no background label, so it cannot learn clips without an event",
                             hint="add background=0 to the synth: data, or train a synth preset (it has one)")
        missing = [n for n in synth.LABELS if n not in self.labels]
        if missing:
            raise InputError(f"the synthetic benchmark's label(s) {', '.join(missing[:4])} are not the model's")
        self._index = [self.labels.index(n) if n in self.labels else -1 for n in synth.CLASSES]
        self.has_ground_truth = True

    def __len__(self):
        return self.spec.clips

    def __getitem__(self, i: int) -> Sample:
        c = synth.make_clip(self.spec, i)
        return Sample(c.frames, c.audio, self._index[c.label], c.event_snippets, c.boxes)


def is_synth(uri: str) -> bool:
    return uri == "synth" or uri.startswith("synth:")


def open_dataset(uri: str, cfg, cache: str | None = None, candidates: int = 1):
    """``synth:...`` (knobs as in ``--data synth:seed=3,clips=500,noise=0.1-0.6,background=0.3``), a
    folder or a list, labelled with the model's labels (a label the model lacks is an error)."""
    if is_synth(uri):
        knobs = synth.parse_knobs(uri.partition(":")[2])
        if cfg.background_index is None:
            knobs.setdefault("background", 0.0)
        return SynthDataset(synth.SynthSpec.for_model(cfg, **knobs), cfg.labels)
    if not is_index(uri):
        raise InputError(f"--data {uri!r} is neither synth:... nor a folder or .csv/.json list of videos")
    return _clips(read_index(uri), cfg, cache, candidates)


def open_training_data(uri: str, cfg, cache: str | None = None, candidates: int = 1):
    """(dataset, cfg): for files, the model takes the data's labels - in the order the folder's
    benchmark.json declares (what ``avgn-edge synth`` writes), else sorted - at least two."""
    if is_synth(uri):
        return open_dataset(uri, cfg), cfg
    if not is_index(uri):
        raise InputError(f"--data {uri!r} is neither synth:... nor a folder or .csv/.json list of videos")
    items = read_index(uri)
    present = labels_of(items)
    if len(present) < 2:
        raise InputError(f"{uri} has one class ({present[0]}): training needs at least two",
                         hint="add clips of other classes - e.g. a background/ folder of clips without the event")
    labels = declared_labels(uri, items) or present
    labels = tuple(n for n in labels if n != BACKGROUND) + ((BACKGROUND,) if BACKGROUND in labels else ())
    if BACKGROUND not in labels and str(uri) not in _told_no_background:
        _told_no_background.add(str(uri))
        log.warning("%s has no %s class: the model will have no 'nothing happening' outcome, so its events "
                    "will fire on anything (add a %s/ folder of videos where nothing of interest happens)",
                    uri, BACKGROUND, BACKGROUND)
    cfg = cfg.replace(labels=labels)
    return _clips(items, cfg, cache, candidates), cfg


def _clips(items, cfg, cache, candidates):
    from .cache import SnippetCache
    from .videos import VideoClips
    store = SnippetCache(cache, items, cfg, candidates) if cache else None
    return VideoClips(items, cfg, cfg.labels, candidates, store)
