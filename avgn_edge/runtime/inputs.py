"""Validation of what apps push: every bad input either converts (with one warning) or raises.

| input                                   | fate                                             |
|-----------------------------------------|--------------------------------------------------|
| frame uint8 HxWx3                       | used as is (any size: the crop resamples)        |
| frame HxW or HxWx1 (grey)               | converted to RGB, warning                        |
| frame HxWx4 (RGBA)                      | alpha dropped, warning                           |
| frame float in [0, 1]                   | scaled to uint8, warning                         |
| frame other dtype/shape, empty, None    | InputError                                       |
| audio at another sample_rate            | resampled (linear), warning                      |
| audio [N, ch] multi-channel             | averaged to mono, warning                        |
| audio longer than the window            | the last window kept (it ends at the frame)      |
| audio shorter than the window           | left-padded with silence, warning                |
| audio with NaN/inf                      | the snippet's audio becomes silence, warning,    |
|                                         | result.audio_ok = False                          |
| timestamp not after the previous one    | InputError, ring unchanged                       |
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError

log = logging.getLogger("avgn_edge.input")


class Warner:
    """Warn once per kind of conversion (a camera would otherwise warn every frame)."""

    def __init__(self):
        self.seen: set[str] = set()

    def __call__(self, kind: str, message: str):
        if kind not in self.seen:
            self.seen.add(kind)
            log.warning(message + " (further warnings of this kind are silenced)")


def check_frame(frame, warn: Warner) -> np.ndarray:
    if frame is None:
        raise InputError("frame is None")
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        warn("grey", f"grey frame {a.shape} converted to RGB")
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(f"frame must be HxWx3 RGB (or grey / RGBA), got shape {a.shape}")
    if a.shape[2] == 4:
        warn("rgba", "4-channel frame: alpha dropped")
        a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0:
            warn("float", f"{a.dtype} frame in [0, 1] scaled to uint8")
            a = (a * 255.0 + 0.5).astype(np.uint8)
        else:
            raise InputError(f"frame must be uint8 (or float in [0, 1]), got {a.dtype}"
                             + ("" if not np.issubdtype(a.dtype, np.floating) else " with values outside [0, 1]"))
    return np.ascontiguousarray(a)


def check_audio(audio, samples: int, rate: int, given_rate: int | None, warn: Warner) -> tuple[np.ndarray, bool]:
    """-> (mono float32 window of ``samples`` at ``rate`` ending at the frame, audio_ok)."""
    if audio is None:
        warn("no_audio", "no audio pushed: using silence")
        return np.zeros(samples, np.float32), False
    a = np.asarray(audio)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"audio must be numeric, got {a.dtype}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    if a.ndim == 2:
        warn("channels", f"{a.shape[1]}-channel audio mixed to mono")
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise InputError(f"audio must be 1-D (or [samples, channels]), got shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        warn("nan", "audio with NaN/inf replaced by silence for this snippet")
        return np.zeros(samples, np.float32), False
    if given_rate is not None and given_rate != rate:
        if given_rate <= 0:
            raise InputError(f"sample_rate must be positive, got {given_rate}")
        warn("rate", f"audio at {given_rate} Hz resampled to {rate} Hz")
        n = int(round(len(a) * rate / given_rate))
        a = np.interp(np.arange(n) * (given_rate / rate), np.arange(len(a)), a).astype(np.float32) if len(a) else a
    if len(a) >= samples:
        return np.ascontiguousarray(a[len(a) - samples:]), True
    warn("short", f"audio window of {len(a)} samples padded to {samples} with silence")
    return np.concatenate([np.zeros(samples - len(a), np.float32), a]), True
