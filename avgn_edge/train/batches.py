"""Turning datasets of Samples into torch batches.

With several processes every one draws the same global permutation (the generator is seeded
alike) and takes its slice of each global batch, so N processes x batch b see exactly the
clips one process x batch N*b sees. For training, a dataset with a ``train_view`` (the
augmented one) is read through it with a generator seeded by (loader seed, clip index), so
augmentations do not depend on the number of workers or processes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler


class TorchClips(Dataset):
    def __init__(self, dataset, seed: int = 0, train: bool = False):
        self.dataset, self.seed = dataset, seed
        self.view = getattr(dataset, "train_view", None) if train else None

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        s = self.view(i, np.random.default_rng([self.seed, i])) if self.view else self.dataset[i]
        T = s.frames.shape[0]
        events = np.zeros(T, bool)
        boxes = np.full((T, 4), np.nan, np.float32)
        if s.event_snippets is not None:
            events[np.asarray(s.event_snippets, int)] = True
        if s.boxes is not None:
            boxes = np.asarray(s.boxes, np.float32)
        return {"frames": torch.from_numpy(np.ascontiguousarray(s.frames)), "own": torch.tensor(getattr(s, "own", True)),
                "audio": torch.from_numpy(np.ascontiguousarray(s.audio, dtype=np.float32)),
                "label": torch.tensor(s.label), "events": torch.from_numpy(events),
                "boxes": torch.from_numpy(boxes),
                **{k: torch.from_numpy(v) for k, v in (getattr(s, "features", None) or {}).items()}}


class RankSlice(Sampler):
    """Process ``rank``'s share of each global batch of a batch sampler."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield batch[self.rank::self.world]


def loader(dataset, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 1, rank: int = 0,
           world: int = 1, pin_memory: bool = False) -> DataLoader:
    """Batches of ``batch_size`` clips for this process (the global batch is ``world`` times that)."""
    g = torch.Generator().manual_seed(seed)
    clips = TorchClips(dataset, seed, train=shuffle)
    if world == 1:
        return DataLoader(clips, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=workers,
                          persistent_workers=workers > 0, drop_last=shuffle, pin_memory=pin_memory)
    # the sampler a single process with the global batch would use, sliced (same generator use)
    order = RandomSampler(clips, generator=g) if shuffle else range(len(clips))
    batches = RankSlice(BatchSampler(order, batch_size * world, drop_last=shuffle), rank, world)
    return DataLoader(clips, batch_sampler=batches, generator=g, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=pin_memory)
