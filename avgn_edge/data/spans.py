"""Ground truth as times: event spans in seconds, mapped onto any model's snippets.

labels.json (``avgn-edge synth``) gives each clip ``events``: ``[{"start": s, "end": e, "box":
[x0, y0, x1, y1]}]``, seconds from the first frame and the box as fractions of the frame's
width and height. A model with T snippets cuts the clip into T equal segments (media.py);
snippet j shows the event when its time (its segment's end, where its frame and audio window
end) lies in (start, end]. So a folder written for one preset trains and evaluates another.

Older labels.json files gave ``event_snippets`` (indices for the writer's T) and ``boxes`` in
pixels; with their ``snippet_times`` they are turned into spans here, without them they are
used only by a model with the same T (``legacy_snippets``).
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-3     # seconds: snippet times and span edges written with rounding


def spans_of(entry: dict, frame_wh: tuple[int, int] | None = None) -> list[dict] | None:
    """The event spans of a labels.json entry (new or old form), or None when it has no times."""
    if "events" in entry:
        return [{"start": float(e["start"]), "end": float(e["end"]),
                 "box": None if e.get("box") is None else [float(v) for v in e["box"]]}
                for e in entry["events"]]
    times = entry.get("snippet_times")
    if "event_snippets" not in entry or not times:
        return None
    times = np.asarray(times, np.float64)
    period = float(np.median(np.diff(times))) if len(times) > 1 else float(times[0])
    boxes = entry.get("boxes") or [None] * len(times)
    spans: list[dict] = []
    for j in sorted(int(i) for i in entry["event_snippets"]):
        box = boxes[j] if j < len(boxes) else None
        if box is not None and frame_wh:
            w, h = frame_wh
            box = [box[0] / w, box[1] / h, box[2] / w, box[3] / h]
        elif box is not None:
            box = None                 # pixels of an unknown frame: no box
        start, end = times[j] - period, times[j]
        if spans and abs(spans[-1]["end"] - start) < _EPS and spans[-1]["box"] == box:
            spans[-1]["end"] = float(end)
        else:
            spans.append({"start": float(start), "end": float(end), "box": box})
    return spans


def snippets_of(spans: list[dict], times: np.ndarray, frame_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(event snippet indices, boxes [T, 4] in pixels of the model's square frame, NaN outside
    the events) for snippets at ``times`` (seconds from the first frame)."""
    times = np.asarray(times, np.float64)
    boxes = np.full((len(times), 4), np.nan, np.float32)
    hit = np.zeros(len(times), bool)
    for s in spans:
        inside = (times > s["start"] + _EPS) & (times <= s["end"] + _EPS)
        hit |= inside
        if s.get("box") is not None:
            boxes[inside] = np.asarray(s["box"], np.float32) * frame_size
    return np.flatnonzero(hit), boxes


def legacy_snippets(entry: dict, num_snippets: int):
    """(event_snippets, boxes) of an old entry without snippet times, if written for this T."""
    ev = entry.get("event_snippets")
    if ev is None or len(entry.get("boxes") or [None] * num_snippets) != num_snippets \
            or any(not 0 <= int(i) < num_snippets for i in ev):
        return None
    boxes = np.asarray([b if b is not None else [np.nan] * 4 for b in entry.get("boxes") or
                        [None] * num_snippets], np.float32)
    return np.asarray(ev, int), boxes
