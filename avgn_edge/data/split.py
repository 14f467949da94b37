"""Holding out a validation split: seeded, stratified by label, recordings kept whole."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import InputError


class Subset:
    """The items ``indices`` of ``base``, with its labels and views."""

    def __init__(self, base, indices):
        self.base, self.indices = base, [int(i) for i in indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[self.indices[i]]

    def read(self, i, rng=None):
        read = getattr(self.base, "read", None)
        return read(self.indices[i], rng) if read else self.base[self.indices[i]]

    def __getattr__(self, name):
        if name in ("base", "indices"):
            raise AttributeError(name)
        return getattr(self.base, name)


def split(dataset, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """(train, validation): about ``fraction`` of each label's recordings go to validation.

    Datasets that know their items (``groups()``: (recording, label) per item) are split by
    recording, so segments of one long recording never land on both sides; others by clip.
    """
    if not 0 < fraction < 1:
        raise InputError(f"--val-fraction must be between 0 and 1, got {fraction}")
    groups = dataset.groups() if hasattr(dataset, "groups") else [(i, None) for i in range(len(dataset))]
    members: dict = defaultdict(list)
    label_of: dict = {}
    for i, (g, label) in enumerate(groups):
        members[g].append(i)
        label_of.setdefault(g, label)
    by_label: dict = defaultdict(list)
    for g in members:
        by_label[label_of[g]].append(g)
    rng = np.random.default_rng([seed, 0x5A11])     # its own stream: the training RNG is untouched
    held = set()
    for label in sorted(by_label, key=str):
        gs = by_label[label]
        n = int(round(fraction * len(gs)))
        if n == 0 and len(gs) > 1 and label is not None:
            n = 1                                   # every label with two recordings is validated
        held.update(gs[j] for j in rng.permutation(len(gs))[:n])
    val = sorted(i for g in held for i in members[g])
    train = sorted(set(range(len(dataset))) - set(val))
    if not val or not train:
        raise InputError(f"--val-fraction {fraction} of {len(dataset)} clips leaves "
                         f"{'no validation clips' if not val else 'nothing to train on'}")
    return Subset(dataset, train), Subset(dataset, val)
