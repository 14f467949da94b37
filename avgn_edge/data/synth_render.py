"""What the synthetic benchmark's objects look like and its sounds sound like (numpy only)."""

from __future__ import annotations

import numpy as np

PATTERNS = ("vstripes", "hstripes", "checker")
TEXTURE_PERIOD = 4          # pixels; equals the glance downscale factor


def texture(pattern: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Zero-mean period-4 pattern over ``box`` in frame coordinates, under a Hann envelope.

    Every run of 4 consecutive pixels of the pattern sums to zero, so the 4x triangle
    (antialias) filter of the glance view removes it; the smooth envelope keeps the
    object's edges from leaking it (under 2.5% of the amplitude reaches the glance).
    """
    x0, y0, x1, y1 = box
    sx = np.where((np.arange(x0, x1) % TEXTURE_PERIOD) < TEXTURE_PERIOD // 2, 1.0, -1.0).astype(np.float32)
    sy = np.where((np.arange(y0, y1) % TEXTURE_PERIOD) < TEXTURE_PERIOD // 2, 1.0, -1.0).astype(np.float32)
    if PATTERNS[pattern] == "vstripes":
        t = np.broadcast_to(sx[None, :], (len(sy), len(sx)))
    elif PATTERNS[pattern] == "hstripes":
        t = np.broadcast_to(sy[:, None], (len(sy), len(sx)))
    else:
        t = sy[:, None] * sx[None, :]
    return t * _hann(len(sy))[:, None] * _hann(len(sx))[None, :]


def _hann(n: int) -> np.ndarray:
    return (np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def sound(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One segment of a family's sound (peak about 1)."""
    t = np.arange(n, dtype=np.float32) / sr
    if kind == "bell":      # inharmonic partials, struck at the segment start
        f0 = 660 * rng.uniform(0.97, 1.03)
        env = np.exp(-t * 9.0)
        w = sum(a * np.sin(2 * np.pi * f0 * r * t) for a, r in ((1.0, 1.0), (0.6, 2.76), (0.4, 5.4)))
        return (w * env / 2.0).astype(np.float32)
    if kind == "buzz":      # band-limited sawtooth, amplitude-modulated
        f0 = 150 * rng.uniform(0.95, 1.05)
        w = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 20))
        return (w * (0.6 + 0.4 * np.sin(2 * np.pi * 25 * t)) / 1.8).astype(np.float32)
    if kind == "chirp":     # repeated up-sweeps 1.2 -> 3.2 kHz
        period = 0.06
        tau = np.mod(t + rng.uniform(0, period), period)
        phase = 2 * np.pi * (1200 * tau + 0.5 * (2000 / period) * tau**2)
        return (np.sin(phase) * np.hanning(n) ** 0.25).astype(np.float32)
    if kind == "hum":       # low steady harmonic tone
        f0 = 110 * rng.uniform(0.97, 1.03)
        return (0.6 * np.sin(2 * np.pi * f0 * t) + 0.4 * np.sin(2 * np.pi * 2 * f0 * t)
                + 0.3 * np.sin(2 * np.pi * 3 * f0 * t)).astype(np.float32)
    if kind == "noise":     # a short band-passed burst at a random time
        burst = np.zeros(n, np.float32)
        m = int(rng.uniform(0.2, 0.6) * n)
        s = int(rng.integers(0, n - m + 1))
        x = rng.standard_normal(m).astype(np.float32)
        k = int(rng.integers(2, 8))
        x = np.convolve(x, np.ones(k, np.float32) / k, mode="same")
        burst[s:s + m] = x * np.hanning(m) * 2.0
        return burst
    raise ValueError(f"unknown sound kind {kind!r}")
