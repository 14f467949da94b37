"""Tuning the event settings on recorded decisions (events/tune.py) and a bundle's tuned defaults
under the command line's flags (cli/args.event_settings)."""

import argparse

import numpy as np

from avgn_edge.events import EventSettings
from avgn_edge.events.tune import replay, tune
from avgn_edge.runtime.result import Result

LABELS = ("bell", "buzz", "background")


def decision(t, **scores):
    s = np.array([scores.get(lab, 0.0) for lab in LABELS], np.float32)
    s[-1] = max(0.0, 1.0 - s.sum())
    return Result(s, LABELS, saliency=np.zeros(4, np.float32), timestamps=t - 0.25 * np.arange(4)[::-1],
                  indices=np.array([3, 1]), boxes=np.zeros((2, 4), np.float32))


def test_tuning_raises_the_threshold_of_the_label_that_fires_on_nothing():
    """bell's events score 0.9; buzz's score 0.95 but buzz also hovers at 0.6-0.7 between events (false
    alarms at the default 0.5): tuning keeps every event and drops the false alarms."""
    truth, results = [], []
    for k in range(6):
        t0 = 20.0 * k + 5
        lab = ("bell", "buzz")[k % 2]
        truth.append({"label": lab, "t_start": t0 - 0.5, "t_end": t0 + 4})
    for t in np.arange(0.5, 125.0, 0.5):
        ev = next((e for e in truth if e["t_start"] < t <= e["t_start"] + 4), None)
        if ev:
            results.append(decision(t, **{ev["label"]: 0.9 if ev["label"] == "bell" else 0.95}))
        elif (t - 5) % 20 >= 10 and (t - 5) % 20 < 13:         # nothing happens: buzz hovers
            results.append(decision(t, buzz=0.6 + 0.02 * ((t - 5) % 20 - 10)))
        else:
            results.append(decision(t))
    end = results[-1].t + 1
    plain = replay(LABELS, results, EventSettings(), truth, end=end, window_s=4.0)
    best, m = tune(LABELS, results, truth, end=end, window_s=4.0)
    assert plain["false_alarms"] > 0 and plain["event_recall"] == 1.0
    assert m["false_alarms"] == 0 and m["event_recall"] == 1.0
    assert best.onset_for("buzz") > 0.66 and best.onset_for("bell") <= 0.9        # above the hover, below bell


def test_a_bundles_tuned_defaults_apply_unless_a_flag_says_otherwise():
    from avgn_edge.cli.args import add_event_arguments, event_settings
    p = argparse.ArgumentParser()
    add_event_arguments(p)
    tuned = {"threshold": 0.8, "label_thresholds": {"bell": 0.9}, "offset": None, "hold_s": 3.0}
    s = event_settings(p.parse_args([]), LABELS, tuned)
    assert (s.threshold, s.onset_for("bell"), s.onset_for("buzz"), s.hold) == (0.8, 0.9, 0.8, 3.0)
    s = event_settings(p.parse_args(["--threshold", "0.6", "--label-threshold", "bell=0.55", "--hold", "1"]),
                       LABELS, tuned)
    assert (s.threshold, s.onset_for("bell"), s.hold) == (0.6, 0.55, 1.0)
    s = event_settings(p.parse_args([]), LABELS)                  # no tuned defaults: the plain ones
    assert (s.threshold, s.hold, s.label_thresholds) == (0.5, 1.0, {})
