"""Tuning the event settings on a stream's recorded decisions (a validation stream, never the test one).

The decisions of one pass through the recognizer are replayed through fresh trackers under candidate
settings (cheap: no model runs). Coordinate search: the hold and the global onset threshold first,
then each label's own threshold in turn, twice over; the score is the event F0.5 (precision weighs
twice recall: a home camera's target is <= 1 false alarm per hour), ties broken by fewer false
alarms, then by the lower thresholds.
"""

from __future__ import annotations

import dataclasses

from ..config import BACKGROUND
from .metrics import detections_of, event_metrics
from .settings import EventSettings
from .tracker import EventTracker

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
HOLDS = (1.0, 2.0, 3.0)


def replay(labels, results, settings: EventSettings, truth, *, end: float, window_s: float) -> dict:
    tracker = EventTracker(labels, settings, camera="tune")
    transitions = []
    for r in results:
        transitions += tracker.update(r)
    transitions += tracker.close(end)
    return event_metrics(truth, detections_of(transitions), seconds=end, window_s=window_s, until=end)


def _score(m: dict, s: EventSettings) -> tuple:
    r, p = m["event_recall"] or 0.0, m["event_precision"] or 0.0
    f = 1.25 * r * p / (0.25 * p + r) if r + p else 0.0
    return round(f, 6), -m["false_alarms"], -s.threshold - sum(s.label_thresholds.values())


def tune(labels, results, truth, *, end: float, window_s: float, thresholds=THRESHOLDS, holds=HOLDS,
         base: EventSettings | None = None) -> tuple[EventSettings, dict]:
    """(the best settings found, their metrics on these decisions)."""
    run = lambda s: replay(labels, results, s, truth, end=end, window_s=window_s)      # noqa: E731
    best = base or EventSettings()
    best_m = run(best)

    def consider(s):
        nonlocal best, best_m
        m = run(s)
        if _score(m, s) > _score(best_m, best):
            best, best_m = s, m

    for h in holds:
        for t in thresholds:
            consider(dataclasses.replace(best, hold=h, threshold=t))
    events = [lab for lab in labels if lab != BACKGROUND]
    for _ in range(2):
        for lab in events:
            for t in thresholds:
                consider(dataclasses.replace(best, label_thresholds={**best.label_thresholds, lab: t}))
    return best, best_m
