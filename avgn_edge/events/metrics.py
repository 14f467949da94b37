"""Event-level quality, as users feel it: recall, precision, false alarms per hour, latency.

A detected event (a ``new`` transition) *matches* a true event when its start (the first
decision that heard it) falls while the true event is in the decision window:
``t_start < start < t_end + window``. Each true event matches at most one detection
(same label preferred, then the earliest); a detection overlapping only true events that
are already matched is a ``duplicate``; one overlapping none is a ``false alarm``.

    event_recall            matched true events / true events
    event_precision         matched detections / detections (duplicates and false alarms count against it)
    false_alarms_per_hour   detections matching no true event, per hour of stream
    onset_latency_p50_s/p95 true start -> the moment the event was announced
    label_accuracy          matched detections with the true label / matched

True events still in the window when the stream stops (``t_end + window > until``) are
not judged, and neither are detections that match only them.
"""

from __future__ import annotations

import numpy as np

METRIC_KEYS = ("event_recall", "event_precision", "false_alarms_per_hour", "onset_latency_p50_s",
               "onset_latency_p95_s", "label_accuracy")


def event_metrics(truth: list[dict], detections: list[dict], *, seconds: float, window_s: float,
                  until: float) -> dict:
    """``truth``: [{label, t_start, t_end}]; ``detections``: [{label, start_time, t}] where ``t``
    is when the event was announced. ``seconds``: the stream's length (for the hourly rate)."""
    truth = sorted(truth, key=lambda e: e["t_start"])
    judged = [e["t_end"] + window_s <= until + 1e-9 for e in truth]
    taken = [False] * len(truth)
    matched, false_alarms, duplicates, latency, right = 0, 0, 0, [], 0
    for d in sorted(detections, key=lambda d: d["start_time"]):
        s = d["start_time"]
        near = [i for i, e in enumerate(truth) if e["t_start"] < s < e["t_end"] + window_s + 1e-9]
        free = [i for i in near if not taken[i]]
        if not near:
            false_alarms += 1
            continue
        if not free:
            duplicates += any(judged[i] for i in near)
            continue
        i = next((i for i in free if truth[i]["label"] == d["label"]), free[0])
        taken[i] = True
        if judged[i]:
            matched += 1
            latency.append(d["t"] - truth[i]["t_start"])
            right += truth[i]["label"] == d["label"]
    events = int(sum(judged))
    detected = matched + false_alarms + duplicates
    hours = seconds / 3600.0
    pct = lambda q: round(float(np.percentile(latency, q)), 3) if latency else None     # noqa: E731
    return {"events": events, "detections": detected, "matched": matched, "false_alarms": false_alarms,
            "duplicates": duplicates, "hours": round(hours, 4),
            "event_recall": round(matched / events, 4) if events else None,
            "event_precision": round(matched / detected, 4) if detected else None,
            "false_alarms_per_hour": round(false_alarms / hours, 3) if hours > 0 else None,
            "onset_latency_p50_s": pct(50), "onset_latency_p95_s": pct(95),
            "label_accuracy": round(right / matched, 4) if matched else None}


def detections_of(transitions) -> list[dict]:
    """The announced events of a list of Transitions, as ``event_metrics`` takes them."""
    return [{"label": tr.event["label"], "start_time": tr.event["start_time"], "t": tr.t}
            for tr in transitions if tr.type == "new"]
