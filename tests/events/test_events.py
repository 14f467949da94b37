"""The event state machine and the event-level metrics, on decisions with known scores."""

import json

import numpy as np
import pytest

from avgn_edge.errors import InputError
from avgn_edge.events import EventSettings, EventTracker, event_metrics, parse_label_thresholds
from avgn_edge.events.metrics import detections_of
from avgn_edge.runtime.result import Result

LABELS = ("bell", "buzz", "chirp", "background")


def decision(t, **scores):
    """A Result at time t with the given label scores (the rest goes to background)."""
    s = np.array([scores.get(l, 0.0) for l in LABELS], np.float32)
    s[-1] = max(0.0, 1.0 - s.sum())
    return Result(s, LABELS, saliency=np.linspace(0, 1, 4, dtype=np.float32), timestamps=t - 0.25 * np.arange(4)[::-1],
                  indices=np.array([3, 1]), boxes=np.array([[1, 2, 33, 34], [5, 6, 37, 38]], np.float32))


def run(tracker, steps):
    out = []
    for t, scores in steps:
        out += tracker.update(decision(t, **scores))
    return out


def test_an_event_opens_updates_and_ends_after_the_hold_time():
    tr = EventTracker(LABELS, EventSettings(threshold=0.5, hold=1.0), camera="door")
    steps = [(0.5, {}), (1.0, {"bell": 0.6}), (1.5, {"bell": 0.9}), (2.0, {"bell": 0.3}),   # 0.3 >= offset 0.25
             (2.5, {"bell": 0.1}), (3.0, {}), (3.5, {})]
    out = run(tr, steps)
    assert [(x.type, x.t) for x in out] == [("new", 1.0), ("update", 1.5), ("end", 3.0)]
    new, upd, end = out
    assert new.before is None and new.event["label"] == "bell" and new.event["camera"] == "door"
    assert new.event["score"] == pytest.approx(0.6) and new.event["end_time"] is None
    assert upd.before["top_score"] == pytest.approx(0.6) and upd.event["top_score"] == pytest.approx(0.9)
    assert end.event["end_time"] == 2.0 and end.event["start_time"] == 1.0       # last heard at 2.0 (>= offset)
    assert len({x.event["id"] for x in out}) == 1 and tr.published == 1 and not tr.active
    # the evidence is the best decision's chosen snippets: times, saliency, boxes
    ev = upd.event["evidence"]
    assert [e["t"] for e in ev] == [1.5, 1.0] and ev[0]["box"] == [1.0, 2.0, 33.0, 34.0]
    json.dumps([x.event for x in out])                                            # JSON-ready


def test_the_hold_bridges_a_dip_and_background_never_opens_an_event():
    tr = EventTracker(LABELS, EventSettings(hold=1.0))
    out = run(tr, [(1.0, {"buzz": 0.8}), (1.5, {}), (2.0, {"buzz": 0.7}), (2.5, {}), (3.0, {})])
    assert [x.type for x in out] == ["new", "end"]               # one event: the dip at 1.5 is bridged
    quiet = EventTracker(LABELS)
    assert run(quiet, [(t, {}) for t in np.arange(1, 20, 0.5)]) == []   # background 1.0 all along


def test_labels_are_followed_independently_and_close_ends_what_is_open():
    tr = EventTracker(LABELS, EventSettings(threshold=0.4, hold=0.0))
    out = run(tr, [(1.0, {"bell": 0.45, "chirp": 0.45}), (1.5, {"bell": 0.5})])
    assert sorted(x.label for x in out if x.type == "new") == ["bell", "chirp"]
    assert [x.label for x in out if x.type == "end"] == ["chirp"]     # hold 0: ends at the first miss
    closing = tr.close()
    assert [(x.type, x.label, x.event["end_time"]) for x in closing] == [("end", "bell", 1.5)]
    assert tr.close() == []


def test_per_label_threshold_offset_and_minimum_duration():
    s = EventSettings(threshold=0.5, label_thresholds={"bell": 0.8}, offset=0.2, min_duration=0.5)
    tr = EventTracker(LABELS, s)
    # bell at 0.7 never opens (its own threshold is 0.8); chirp opens at 1.0 but is published
    # only once heard for 0.5 s (at 1.5, with its start time); a one-decision buzz never is
    out = run(tr, [(1.0, {"bell": 0.7, "chirp": 0.6}), (1.5, {"chirp": 0.25}), (2.0, {}), (3.0, {}),
                   (4.0, {"buzz": 0.9}), (6.0, {})])
    assert [(x.type, x.label, x.t) for x in out] == [("new", "chirp", 1.5), ("end", "chirp", 3.0)]
    assert out[0].event["start_time"] == 1.0 and out[1].event["end_time"] == 1.5


@pytest.mark.parametrize("kwargs, text", [
    ({"threshold": 1.5}, "onset threshold must be in [0, 1]"),
    ({"threshold": -0.1}, "must be in [0, 1]"),
    ({"offset": 2}, "offset threshold must be in [0, 1]"),
    ({"label_thresholds": {"bell": 7}}, "threshold of bell must be in [0, 1]"),
    ({"hold": -1}, "hold must be >= 0"),
    ({"min_duration": float("nan")}, "min duration must be >= 0"),
])
def test_bad_settings_are_one_line_errors(kwargs, text):
    with pytest.raises(InputError, match=text.replace("[", r"\[").replace("]", r"\]")):
        EventSettings(**kwargs)


def test_settings_are_checked_against_the_labels():
    with pytest.raises(InputError, match="unknown label.*bel-checker") as e:
        EventTracker(LABELS, EventSettings(label_thresholds={"bel-checker": 0.6}))
    assert "bell" in e.value.hint and "background" not in e.value.hint
    with pytest.raises(InputError, match="never opens an event"):
        EventTracker(LABELS, EventSettings(label_thresholds={"background": 0.6}))
    with pytest.raises(InputError, match="offset threshold 0.6 is above the onset threshold 0.5"):
        EventTracker(LABELS, EventSettings(offset=0.6))
    assert parse_label_thresholds(["bell=0.7,buzz=0.2", "chirp=1"]) == {"bell": 0.7, "buzz": 0.2, "chirp": 1.0}
    for bad in (["bell"], ["bell=high"], ["=0.3"]):
        with pytest.raises(InputError):
            parse_label_thresholds(bad)


def test_event_metrics_match_one_to_one_and_count_false_alarms_per_hour():
    W = 2.0
    truth = [{"label": "bell", "t_start": 10.0, "t_end": 10.5}, {"label": "buzz", "t_start": 30.0, "t_end": 30.75},
             {"label": "chirp", "t_start": 60.0, "t_end": 60.5}, {"label": "bell", "t_start": 3599.0, "t_end": 3599.5}]
    det = [{"label": "bell", "start_time": 10.5, "t": 10.5},        # matched, latency 0.5
           {"label": "bell", "start_time": 11.5, "t": 11.5},        # the same event again: a duplicate
           {"label": "hum", "start_time": 31.0, "t": 31.5},         # matched, wrong label, latency 1.5
           {"label": "bell", "start_time": 45.0, "t": 45.0},        # nothing there: a false alarm
           {"label": "bell", "start_time": 3599.5, "t": 3599.5}]    # its event is still in the window: not judged
    m = event_metrics(truth, det, seconds=3600.0, window_s=W, until=3600.0)
    assert (m["events"], m["matched"], m["duplicates"], m["false_alarms"], m["detections"]) == (3, 2, 1, 1, 4)
    assert m["event_recall"] == pytest.approx(2 / 3, abs=1e-4) and m["event_precision"] == pytest.approx(0.5)
    assert m["false_alarms_per_hour"] == pytest.approx(1.0) and m["label_accuracy"] == pytest.approx(0.5)
    assert m["onset_latency_p50_s"] == pytest.approx(1.0) and m["onset_latency_p95_s"] == pytest.approx(1.45)
    # a detection after the event left the window is a false alarm, not a match
    late = event_metrics(truth[:1], [{"label": "bell", "start_time": 12.6, "t": 12.6}], seconds=60, window_s=W,
                         until=60)
    assert late["false_alarms"] == 1 and late["event_recall"] == 0.0


def test_tracker_output_feeds_the_metrics():
    tr = EventTracker(LABELS)
    out = run(tr, [(1.0, {"bell": 0.9}), (3.0, {}), (5.0, {"buzz": 0.9}), (7.0, {})]) + tr.close()
    det = detections_of(out)
    assert det == [{"label": "bell", "start_time": 1.0, "t": 1.0}, {"label": "buzz", "start_time": 5.0, "t": 5.0}]
