"""Events: from decisions to what users are told (one state machine for every output).

    tracker.py   EventTracker: per-label onset / hold (max_not_heard) / offset / min duration
    settings.py  EventSettings: the thresholds and times, validated against a model's labels
    metrics.py   event recall, precision, false alarms per hour, onset latency
    evaluate.py  the event-level evaluation on a simulated clock (``avgn-edge eval --stream``)

No torch here: live, demo, the evaluation and every sink use it.
"""

from .metrics import METRIC_KEYS, detections_of, event_metrics
from .settings import EventSettings, parse_label_thresholds
from .tracker import Event, EventTracker, Transition, evidence, make_tracker, wall_time

__all__ = ["METRIC_KEYS", "Event", "EventSettings", "EventTracker", "Transition", "detections_of", "event_metrics",
           "evidence", "make_tracker", "parse_label_thresholds", "wall_time"]
