"""Drawing a Result onto a frame: labels and scores, patch boxes, the saliency timeline, FPS/latency."""

from __future__ import annotations

import cv2
import numpy as np

from ..runtime.result import Result

GREEN, WHITE, BLACK, ORANGE = (60, 220, 90), (255, 255, 255), (0, 0, 0), (255, 165, 0)


MIN_SIDE = 384      # small frames (the synthetic 128 px) are enlarged so the text stays legible


def draw(frame: np.ndarray, result: Result | None, fps: float | None = None, latency_ms: float | None = None,
         top: int = 3) -> np.ndarray:
    """An RGB copy of ``frame`` with the overlay (the frame itself is not modified); frames
    smaller than MIN_SIDE are enlarged by a whole factor, boxes scaled with them."""
    zoom = max(1, -(-MIN_SIDE // min(frame.shape[:2])))
    img = np.ascontiguousarray(np.repeat(np.repeat(frame, zoom, 0), zoom, 1) if zoom > 1 else frame.copy())
    h, w = img.shape[:2]
    s = max(h, w) / 640.0                        # scale text and lines with the frame
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.55 * max(s, 0.8), max(1, int(round(s)))
    if result is not None:
        for j, (i, box) in enumerate(zip(result.indices, result.boxes)):
            x0, y0, x1, y1 = (int(round(v * zoom)) for v in box)
            age = result.timestamps[-1] - result.timestamps[int(i)]
            cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), ORANGE if j else GREEN, th)
            if s >= 0.45:
                cv2.putText(img, f"-{age:.1f}s", (x0 + 2, max(y0 - 3, 10)), font, fs * 0.8, WHITE, th, cv2.LINE_AA)
        line = int(18 * max(s, 0.45))
        for n, (label, score) in enumerate(result.top(top)):
            y = line * (n + 1)
            bar = int(score * w * 0.35)
            cv2.rectangle(img, (0, y - line + 3), (bar, y + 2), (40, 90, 160), -1)
            cv2.putText(img, f"{label} {score:.2f}", (3, y - 2), font, fs, WHITE, th, cv2.LINE_AA)
        _timeline(img, result)
    status = " ".join(x for x in (f"{fps:.1f} fps" if fps else "", f"{latency_ms:.0f} ms" if latency_ms else "") if x)
    if status:
        (tw, _), _ = cv2.getTextSize(status, font, fs, th)
        cv2.putText(img, status, (w - tw - 4, int(14 * max(s, 0.45))), font, fs, WHITE, th, cv2.LINE_AA)
    return img


def _timeline(img: np.ndarray, result: Result):
    """Saliency of the window's snippets as bars along the bottom edge; chosen ones highlighted."""
    h, w = img.shape[:2]
    T = len(result.saliency)
    sal = np.exp(result.saliency - result.saliency.max())
    sal = sal / sal.sum()
    height = max(8, h // 8)
    cell = w / T
    chosen = set(int(i) for i in result.indices)
    for i, v in enumerate(sal):
        x0, x1 = int(i * cell) + 1, int((i + 1) * cell) - 1
        y0 = h - 1 - int(v * height * 0.95) - 1
        cv2.rectangle(img, (x0, y0), (x1, h - 1), GREEN if i in chosen else (150, 150, 150), -1)
