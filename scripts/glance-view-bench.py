"""The NumPy glance view (kernels/reference.py ``glance_views``) against the form it replaced
(frames transposed to CHW first, then the two products), interleaved, same numbers checked.

    PYTHONPATH=. python scripts/glance-view-bench.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from avgn_edge.kernels.reference import axis_weights, glance_views

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CASES = {"synth clip: 8 x 128x128 -> 32": ((8, 128, 128, 3), 32, 300),
         "16 x 480x640 -> 224": ((16, 480, 640, 3), 224, 10),
         "one 360x640 -> 32": ((1, 360, 640, 3), 32, 300)}


def chw_first(frames: np.ndarray, size: int) -> np.ndarray:
    """The replaced form: uint8 NHWC -> float CHW, then rows and columns as batched products."""
    n, h, w, _ = frames.shape
    x = np.ascontiguousarray(frames.astype(np.float32).transpose(0, 3, 1, 2))
    wy = axis_weights(h, size, 0.0, float(h)).astype(np.float32)
    wx = axis_weights(w, size, 0.0, float(w)).astype(np.float32)
    v = np.matmul(np.matmul(wy, x), wx.T)
    gain = (1.0 / (255.0 * np.asarray(STD, np.float32)))[:, None, None]
    bias = (-np.asarray(MEAN, np.float32) / np.asarray(STD, np.float32))[:, None, None]
    return (v * gain + bias).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"load {os.getloadavg()[0]:.1f}")
    for name, (shape, size, reps) in CASES.items():
        frames = rng.integers(0, 256, shape, dtype=np.uint8)
        err = float(np.abs(glance_views(frames, size, MEAN, STD) - chw_first(frames, size)).max())
        rows = []
        for _ in range(a.repeats):
            t = {"hwc": 0.0, "chw": 0.0}
            for _ in range(reps):                 # interleaved call by call
                for key, fn in (("hwc", lambda: glance_views(frames, size, MEAN, STD)),
                                ("chw", lambda: chw_first(frames, size))):
                    t0 = time.perf_counter()
                    fn()
                    t[key] += time.perf_counter() - t0
            rows.append(f"{t['chw'] / reps * 1e3:.3f} -> {t['hwc'] / reps * 1e3:.3f} ms")
        print(f"{name}: {'; '.join(rows)} (max |diff| {err:.1e})")


if __name__ == "__main__":
    main()
