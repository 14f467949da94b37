"""Drawing on frames: a Result (labels and scores, patch boxes, the saliency timeline, FPS/latency,
the events open now) for the live views, and an event's evidence for the clip sink's snapshot."""

from __future__ import annotations

import cv2
import numpy as np

from ..runtime.result import Result

GREEN, WHITE, BLACK, ORANGE, RED = (60, 220, 90), (255, 255, 255), (0, 0, 0), (255, 165, 0), (230, 40, 40)


MIN_SIDE = 384      # small frames (the synthetic 128 px) are enlarged so the text stays legible


def draw(frame: np.ndarray, result: Result | None, fps: float | None = None, latency_ms: float | None = None,
         top: int = 3, events: list[str] = ()) -> np.ndarray:
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
    for n, label in enumerate(events):          # open events, bottom-right above the timeline
        text = f"EVENT {label}"
        (tw, th_), _ = cv2.getTextSize(text, font, fs, th)
        y = h - max(8, h // 8) - 6 - n * (th_ + 8)
        cv2.rectangle(img, (w - tw - 10, y - th_ - 4), (w - 2, y + 4), RED, -1)
        cv2.putText(img, text, (w - tw - 6, y), font, fs, WHITE, th, cv2.LINE_AA)
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


def annotate_snapshot(frame: np.ndarray, event: dict) -> np.ndarray:
    """The frame with the best decision's patch boxes and the label, top score and time."""
    img = np.ascontiguousarray(frame.copy())
    h, w = img.shape[:2]
    th = max(1, round(max(h, w) / 400))
    for j, e in enumerate(event.get("evidence") or []):
        x0, y0, x1, y1 = (int(round(v)) for v in e["box"])
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), ORANGE if j else GREEN, th)
    text = f"{event['label']} {event['top_score']:.2f}"
    fs = 0.4 * max(1.0, max(h, w) / 320)
    cv2.putText(img, text, (3, int(14 * fs / 0.4)), cv2.FONT_HERSHEY_SIMPLEX, fs, WHITE, th, cv2.LINE_AA)
    return img
