"""Tiny folders of labelled clips for the home preset's tests (real-material clips are not in the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avgn_edge.media import write_video

COLOURS = {"dog": (200, 120, 40), "alarm": (220, 30, 30), "vehicle": (40, 40, 200), "knock": (40, 200, 40)}
TONES = {"dog": 440.0, "alarm": 1200.0, "vehicle": 120.0, "knock": 700.0}


def clip(label: str, seed: int, seconds: float = 4.0, size: int = 64, fps: int = 10, sr: int = 16000):
    """A 4 s clip: a coloured square somewhere in a noisy scene with the label's tone (background: neither)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    frames = rng.integers(60, 120, (n, size, size, 3)).astype(np.uint8)
    t = np.arange(int(seconds * sr)) / sr
    audio = 0.02 * rng.standard_normal(len(t)).astype(np.float32)
    if label in COLOURS:
        x, y = rng.integers(0, size // 2, 2)
        frames[:, y:y + size // 2, x:x + size // 2] = COLOURS[label]
        audio += 0.3 * np.sin(2 * np.pi * TONES[label] * t).astype(np.float32)
    return frames, audio, fps, sr


def clip_folder(root: Path, labels, per_label: int, seed: int = 0) -> Path:
    root = Path(root)
    for i, label in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for j in range(per_label):
            frames, audio, fps, sr = clip(label, seed * 1000 + i * 100 + j)
            write_video(root / label / f"{j}.mp4", frames, fps, audio, sr)
    return root
