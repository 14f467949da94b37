"""Turning datasets of Samples into torch batches."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class TorchClips(Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        s = self.dataset[i]
        T = s.frames.shape[0]
        events = np.zeros(T, bool)
        boxes = np.full((T, 4), np.nan, np.float32)
        if s.event_snippets is not None:
            events[np.asarray(s.event_snippets, int)] = True
        if s.boxes is not None:
            boxes = np.asarray(s.boxes, np.float32)
        return {"frames": torch.from_numpy(np.ascontiguousarray(s.frames)),
                "audio": torch.from_numpy(np.ascontiguousarray(s.audio, dtype=np.float32)),
                "label": torch.tensor(s.label), "events": torch.from_numpy(events),
                "boxes": torch.from_numpy(boxes)}


def loader(dataset, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 1) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TorchClips(dataset), batch_size=batch_size, shuffle=shuffle, generator=g,
                      num_workers=workers, persistent_workers=workers > 0, drop_last=shuffle)
