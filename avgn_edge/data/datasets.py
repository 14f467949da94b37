"""Datasets by URI: ``synth:seed=S,clips=N,...``, a folder of videos or a path,label list.

Folders and lists are read by index.py (labels.json as ``avgn-edge synth`` writes it, one
sub-folder per class, or a CSV/JSON of path,label[,start,end]) and decoded by videos.py,
optionally through the snippet cache (cache.py). Every item is a ``Sample``: T snippet
frames, their audio windows, the label and, where known, the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import synth
from .index import is_index, labels_of, read_index


@dataclass
class Sample:
    frames: np.ndarray                      # [T, H, W, 3] uint8 RGB
    audio: np.ndarray                       # [T, N] float32
    label: int
    event_snippets: np.ndarray | None = None
    boxes: np.ndarray | None = None         # [T, 4] in frame pixels, NaN outside the event
    has_audio: bool = True
    path: str | None = None


class SynthDataset:
    def __init__(self, spec: synth.SynthSpec):
        self.spec = spec
        self.labels = synth.LABELS
        self.has_ground_truth = True

    def __len__(self):
        return self.spec.clips

    def __getitem__(self, i: int) -> Sample:
        c = synth.make_clip(self.spec, i)
        return Sample(c.frames, c.audio, c.label, c.event_snippets, c.boxes)


def is_synth(uri: str) -> bool:
    return uri == "synth" or uri.startswith("synth:")


def open_dataset(uri: str, cfg, cache: str | None = None, candidates: int = 1):
    """``synth:...`` (knobs as in ``--data synth:seed=3,clips=500,distractors=0.5,noise=0.1``), a
    folder or a list, labelled with the model's labels (a label the model lacks is an error)."""
    if is_synth(uri):
        ds = SynthDataset(synth.SynthSpec.for_model(cfg, **synth.parse_knobs(uri.partition(":")[2])))
        if tuple(ds.labels) != tuple(cfg.labels):
            raise InputError(f"the data's labels {list(ds.labels)[:4]}... differ from the model's")
        return ds
    if not is_index(uri):
        raise InputError(f"--data {uri!r} is neither synth:... nor a folder or .csv/.json list of videos")
    return _clips(read_index(uri), cfg, cache, candidates)


def open_training_data(uri: str, cfg, cache: str | None = None, candidates: int = 1):
    """(dataset, cfg): for files, the model takes the data's labels (sorted), at least two."""
    if is_synth(uri):
        return open_dataset(uri, cfg), cfg
    if not is_index(uri):
        raise InputError(f"--data {uri!r} is neither synth:... nor a folder or .csv/.json list of videos")
    items = read_index(uri)
    labels = labels_of(items)
    if len(labels) < 2:
        raise InputError(f"{uri} has one class ({labels[0]}): training needs at least two",
                         hint="add clips of other classes - e.g. a background/ folder of clips without the event")
    cfg = cfg.replace(labels=labels)
    return _clips(items, cfg, cache, candidates), cfg


def _clips(items, cfg, cache, candidates):
    from .cache import SnippetCache
    from .videos import VideoClips
    store = SnippetCache(cache, items, cfg, candidates) if cache else None
    return VideoClips(items, cfg, cfg.labels, candidates, store)
