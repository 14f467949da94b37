"""NumPy reference of the crop-resize-normalize kernel (crop_resize.cu), used by the CPU runtime.

Sampling rule (the one the model was trained with, see avgn_edge/model/views.py): an
output of n pixels over the source interval [start, start + length) samples at centres
``start + s * (i + 0.5)`` (s = length / n, pixel edges at integers) with a triangle
filter of half-width ``max(s, 1)``: plain bilinear when s <= 1 (``grid_sample``,
align_corners=False, border padding) and antialiased when downscaling (torch's
``interpolate(..., antialias=True)``). Taps outside the frame are dropped and the weights
renormalised. Separable in x and y; normalised as (v / 255 - mean) / std.

Patch boxes come from the policy's centres: a box of ``box_frac`` of the frame's width
and height, centred at (cx, cy) in [0, 1] and clamped inside the frame. The glance view
is the box covering the whole frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=256)
def axis_weights(in_size: int, out_size: int, start: float, length: float) -> np.ndarray:
    """[out_size, in_size] float64 resampling matrix for one axis (cached: the glance view's
    never changes for a camera). Treat the result as read-only."""
    scale = length / out_size
    support = max(scale, 1.0)
    centres = start + scale * (np.arange(out_size) + 0.5)
    taps = np.arange(in_size) + 0.5
    w = np.clip(1.0 - np.abs(taps[None, :] - centres[:, None]) / support, 0.0, None)
    total = w.sum(1, keepdims=True)
    return w / np.where(total > 0, total, 1.0)


def axis_taps(in_size: int, out_size: int, start: float, length: float) -> tuple[int, np.ndarray]:
    """(first, weights [out_size, n] float32): ``axis_weights`` restricted to the input samples
    [first, first + n) that carry weight - the same numbers, computed only over the support (a
    patch's box moves with every decision, so caching the full matrix does not help)."""
    scale = length / out_size
    support = max(scale, 1.0)
    lo = max(int(np.floor(start - support)), 0)
    hi = min(int(np.ceil(start + length + support)) + 1, in_size)
    centres = start + scale * (np.arange(out_size) + 0.5)
    taps = np.arange(lo, hi) + 0.5
    w = np.clip(1.0 - np.abs(taps[None, :] - centres[:, None]) / support, 0.0, None)
    total = w.sum(1, keepdims=True)
    w = w / np.where(total > 0, total, 1.0)
    nz = np.nonzero(w.any(0))[0]
    return lo + int(nz[0]), w[:, nz[0]:nz[-1] + 1].astype(np.float32)


def patch_box(centre, box_frac: float, height: int, width: int) -> tuple[float, float, float, float]:
    """(x0, y0, w, h) in source pixels of the clamped box around ``centre`` (x, y in [0, 1])."""
    half = 0.5 * box_frac
    cx = min(max(float(centre[0]), half), 1.0 - half)
    cy = min(max(float(centre[1]), half), 1.0 - half)
    return (cx - half) * width, (cy - half) * height, box_frac * width, box_frac * height


def crop_resize(frame: np.ndarray, box: tuple[float, float, float, float], out_h: int, out_w: int,
                mean, std, swap_rb: bool = False, dtype=np.float32) -> np.ndarray:
    """One uint8 HWC frame, box (x0, y0, w, h) -> normalised [3, out_h, out_w]."""
    h, w = frame.shape[:2]
    x0, y0, bw, bh = box
    r0, wy = axis_taps(h, out_h, y0, bh)
    c0, wx = axis_taps(w, out_w, x0, bw)
    src = frame[..., ::-1] if swap_rb else frame
    # rows first, on the (small) set of rows and columns with non-zero weight; weights are
    # computed in float64, applied in float32 (like the kernel): ~1e-6 relative
    sub = src[r0:r0 + wy.shape[1], c0:c0 + wx.shape[1]].astype(np.float32)
    rows_done = np.tensordot(wy, sub, axes=(1, 0))                                   # [out_h, w', 3]
    out = np.tensordot(rows_done, wx, axes=(1, 1)).transpose(1, 0, 2)
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return ((out / np.float32(255.0) - m) / s).astype(dtype)


def glance_views(frames, size: int, mean, std, swap_rb: bool = False, dtype=np.float32) -> np.ndarray:
    """[N, H, W, 3] uint8 (or a list of N HxWx3 frames, sizes may differ) -> [N, 3, size, size]:
    the whole frame, antialiased; the same arithmetic as ``crop_resize`` with the full-frame box,
    vectorised over the frames of each size (two matrix products per group)."""
    n = len(frames)
    out = np.empty((n, 3, size, size), dtype)
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(f.shape, []).append(i)
    # (v / 255 - mean) / std as one multiply-add per value (a 224 px clip: 2.4M values)
    gain = (1.0 / (255.0 * np.asarray(std, np.float32)))[:, None, None].astype(np.float32)
    bias = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32))[:, None, None].astype(np.float32)
    for (h, w, _), idx in groups.items():
        src = frames if isinstance(frames, np.ndarray) and len(idx) == n else np.stack([frames[i] for i in idx])
        if swap_rb:
            src = src[..., ::-1]
        g = len(idx)
        if (h, w) == (size, size):                                             # the weights are exactly I
            v = src.astype(np.float32).transpose(0, 3, 1, 2)
        else:
            # rows first (as crop_resize) on the frames as they are, HWC: [size, h] @ [h, w*3] per frame;
            # then the columns as one 2-D product over every (frame, row, channel). Both products are
            # contiguous BLAS calls; transposing the frames to CHW first cost ~1.8x (synth, 8 frames)
            wy = axis_weights(h, size, 0.0, float(h)).astype(np.float32)      # [size, h]
            wx = axis_weights(w, size, 0.0, float(w)).astype(np.float32)      # [size, w]
            rows = np.matmul(wy, src.astype(np.float32).reshape(g, h, w * 3))  # [g, size, w*3]
            rows = np.ascontiguousarray(rows.reshape(g, size, w, 3).transpose(0, 1, 3, 2)).reshape(-1, w)
            v = (rows @ wx.T).reshape(g, size, 3, size).transpose(0, 2, 1, 3)  # [g, 3, size, size]
        if len(idx) == n and dtype == np.float32:
            np.add(np.multiply(v, gain, out=out), bias, out=out)
        else:
            out[idx] = (v * gain + bias).astype(dtype)
    return out


def crop_patches(frames, indices: np.ndarray, centres: np.ndarray, box_frac: float, size: int,
                 mean, std, start: int = 0, **kw) -> np.ndarray:
    """Ring of T frames ([T, H, W, 3] or a list of T equal-size HxWx3 frames), k snippet
    indices (time order from slot ``start``) and centres [k, 2] -> [k, 3, size, size]
    patches (what the kernel writes)."""
    t, (h, w) = len(frames), frames[0].shape[:2]
    return np.stack([crop_resize(frames[(start + int(i)) % t], patch_box(c, box_frac, h, w), size, size, mean, std, **kw)
                     for i, c in zip(indices, centres)])


def _band(in_size: int, out_size: int, starts: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """For M boxes of one ``length`` at ``starts`` [M]: (first [M] int, weights [M, out, n] float32)
    over a fixed window of n input samples holding every tap with weight (``axis_weights``' numbers)."""
    scale = length / out_size
    support = max(scale, 1.0)
    n = min(int(np.ceil(length + 2 * support)) + 2, in_size)
    first = np.clip(np.floor(starts - support).astype(np.int64), 0, in_size - n)
    centres = starts[:, None] + scale * (np.arange(out_size) + 0.5)                   # [M, out]
    taps = first[:, None] + np.arange(n) + 0.5                                        # [M, n]
    w = np.clip(1.0 - np.abs(taps[:, None, :] - centres[:, :, None]) / support, 0.0, None)
    total = w.sum(2, keepdims=True)
    return first, (w / np.where(total > 0, total, 1.0)).astype(np.float32)


def crop_patches_batch(rings, starts, indices: np.ndarray, centres: np.ndarray, box_frac: float, size: int,
                       mean, std) -> np.ndarray:
    """The patches of B windows at once: ``rings`` B frame rings (lists of T frames; frame sizes may
    differ between rings), ``starts`` their oldest slots, indices [B, k], centres [B, k, 2] ->
    [B, k, 3, size, size]; the same numbers as ``crop_patches`` per ring, vectorised over the
    B*k patches of each frame size (a few array operations per call, not per patch)."""
    b, k = indices.shape
    out = np.empty((b, k, 3, size, size), np.float32)
    jobs: dict[tuple, list] = {}
    for i, (ring, start) in enumerate(zip(rings, starts)):
        for j in range(k):
            f = ring[(int(start) + int(indices[i, j])) % len(ring)]
            jobs.setdefault(f.shape[:2], []).append((i, j, f))
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    for (h, w), items in jobs.items():
        c = np.array([centres[i, j] for i, j, _ in items], np.float64)
        half = 0.5 * box_frac
        cx, cy = np.clip(c[:, 0], half, 1.0 - half), np.clip(c[:, 1], half, 1.0 - half)   # as patch_box
        fy, wy = _band(h, size, (cy - half) * h, box_frac * h)
        fx, wx = _band(w, size, (cx - half) * w, box_frac * w)
        ny, nx = wy.shape[2], wx.shape[2]
        sub = np.stack([f[y:y + ny, x:x + nx] for (_, _, f), y, x in zip(items, fy, fx)]).astype(np.float32)
        rows = np.matmul(wy, sub.reshape(len(items), ny, nx * 3)).reshape(len(items), size, nx, 3)
        v = np.matmul(np.ascontiguousarray(rows.transpose(0, 3, 1, 2)),                    # [M, 3, size, size]
                      np.ascontiguousarray(wx.transpose(0, 2, 1))[:, None])
        v = (v / np.float32(255.0) - m) / s
        for (i, j, _), p in zip(items, v):
            out[i, j] = p
    return out
