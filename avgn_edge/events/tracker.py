"""The event state machine: decisions (Results) in, event transitions out.

One tracker per stream. Each label (never ``background``) is followed on its own, as
Frigate follows audio labels: an event opens when the label's score reaches its onset
threshold, stays open while the score stays >= the offset threshold, and ends ``hold``
seconds after it was last heard (``max_not_heard``). With ``min_duration`` an event is
published only once it has been heard that long; shorter ones vanish silently.

Every change is a ``Transition`` of type ``new`` / ``update`` (a higher top score, with its
evidence) / ``end``, carrying the event before and after, in the shape Frigate's MQTT
``events`` topic uses: id, camera, label, score, top_score, start_time, end_time, plus the
audio-visual evidence of the best decision (the chosen snippets' times, saliency and
patch boxes). Times are on the Results' clock (``time.monotonic()`` for live sources,
stream seconds in a simulation; ``wall_time`` converts a live one to the epoch).

    tracker = EventTracker(rec.labels, EventSettings(threshold=0.6, hold=2.0), camera="door")
    for tr in tracker.update(result):        # after every decision
        print(tr.type, tr.event["label"], tr.event["start_time"])
    tracker.close()                          # ends what is still open
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

from ..config import BACKGROUND
from .settings import EventSettings

_EPS = 1e-6


@dataclass
class Event:
    id: str
    camera: str
    label: str
    score: float                     # the latest score while heard
    top_score: float
    start_time: float                # the first decision that heard it
    end_time: float | None = None    # the last decision that heard it, once ended
    top_score_time: float = 0.0      # the decision that gave top_score ...
    evidence: list[dict] = field(default_factory=list)   # ... and its chosen snippets
    last_heard: float = 0.0
    published: bool = False
    carried: str | None = None       # heard / seen / both at top_score (runtime/modality.py); None: unknown

    @property
    def duration(self) -> float:
        return (self.last_heard if self.end_time is None else self.end_time) - self.start_time

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("published", "last_heard"):
            d.pop(k)
        return d


@dataclass(frozen=True)
class Transition:
    type: str                        # "new" | "update" | "end"
    t: float                         # time of the decision that caused it
    event: dict                      # the event after the change (Event.to_dict())
    before: dict | None = None       # and before it (None for "new")

    @property
    def label(self) -> str:
        return self.event["label"]

    def record(self) -> dict:
        """The JSON-lines record every output writes: ``onset`` (new: t = start time, score),
        ``update`` (a higher top score, with its evidence) or ``offset`` (end: t = last heard,
        onset, duration, peak), each with the event's ``id``."""
        e = self.event
        if self.type == "new":
            return {"type": "onset", "label": e["label"], "t": round(e["start_time"], 4), "score": round(e["score"], 4),
                    "id": e["id"], "camera": e["camera"], "evidence": e["evidence"], "carried": e.get("carried")}
        if self.type == "update":
            return {"type": "update", "label": e["label"], "t": round(self.t, 4), "score": round(e["score"], 4),
                    "top_score": round(e["top_score"], 4), "id": e["id"], "evidence": e["evidence"],
                    "carried": e.get("carried")}
        return {"type": "offset", "label": e["label"], "t": round(e["end_time"], 4), "onset": round(e["start_time"], 4),
                "duration": round(e["end_time"] - e["start_time"], 4), "peak": round(e["top_score"], 4), "id": e["id"]}


def evidence(result) -> list[dict]:
    """The snippets a decision looked at closely: time, saliency and patch box (frame pixels)."""
    return [{"t": round(float(result.timestamps[int(i)]), 4), "saliency": round(float(result.saliency[int(i)]), 4),
             "box": [round(float(v), 1) for v in box]} for i, box in zip(result.indices, result.boxes)]


def _carried(result, index: int) -> str | None:
    from ..runtime.modality import carried_for
    return carried_for(result, index) if hasattr(result, "heard") else None


def wall_time(t: float) -> float:
    """A ``time.monotonic()`` time as seconds since the epoch (for outputs that want one)."""
    return time.time() - time.monotonic() + t


class EventTracker:
    def __init__(self, labels, settings: EventSettings | None = None, camera: str = "default"):
        self.labels = tuple(labels)
        self.camera = camera
        self.configure(settings or EventSettings())
        self._open: dict[str, Event] = {}
        self._seq = 0
        self.published = 0               # events announced ("new") so far ...
        self.by_label: dict[str, int] = {}   # ... per label (bounded by the label set)

    def configure(self, settings: EventSettings):
        """New settings (checked against the labels: InputError); open events stay open."""
        self.settings = settings.check(self.labels)
        self._watch = [(i, l, settings.onset_for(l), settings.offset_for(l))
                       for i, l in enumerate(self.labels) if l != BACKGROUND]

    @property
    def active(self) -> list[Event]:
        return [e for e in self._open.values() if e.published]

    def _id(self, label: str, start: float) -> str:
        self._seq += 1
        h = hashlib.blake2s(f"{self.camera}/{label}/{start}/{self._seq}".encode(), digest_size=4).hexdigest()
        return f"{start:.3f}-{h}"

    def _publish(self, ev: Event, t: float) -> Transition:
        ev.published = True
        self.published += 1
        self.by_label[ev.label] = self.by_label.get(ev.label, 0) + 1
        return Transition("new", t, ev.to_dict())

    def update(self, result) -> list[Transition]:
        """Feed one decision; returns the transitions it causes (often none)."""
        t, scores, s_ = result.t, result.scores, self.settings
        out: list[Transition] = []
        for i, label, onset, offset in self._watch:
            score = float(scores[i])
            ev = self._open.get(label)
            if ev is None:
                if score >= onset:
                    ev = self._open[label] = Event(self._id(label, t), self.camera, label, score, score, t,
                                                   top_score_time=t, evidence=evidence(result), last_heard=t,
                                                   carried=_carried(result, i))
                    if s_.min_duration <= 0:
                        out.append(self._publish(ev, t))
                continue
            if score >= offset:
                before = ev.to_dict() if ev.published else None
                ev.last_heard, ev.score = t, score
                better = score > ev.top_score
                if better:
                    ev.top_score, ev.top_score_time, ev.evidence = score, t, evidence(result)
                    ev.carried = _carried(result, i)
                if not ev.published:
                    if t - ev.start_time >= s_.min_duration - _EPS:
                        out.append(self._publish(ev, t))
                elif better:
                    out.append(Transition("update", t, ev.to_dict(), before))
            elif t - ev.last_heard >= s_.hold - _EPS:
                out.extend(self._end(label, t))
        return out

    def _end(self, label: str, t: float) -> list[Transition]:
        ev = self._open.pop(label)
        if not ev.published:
            return []
        before = ev.to_dict()
        ev.end_time = ev.last_heard
        return [Transition("end", t, ev.to_dict(), before)]

    def close(self, t: float | None = None) -> list[Transition]:
        """End every open event (the stream stopped); unpublished ones are dropped."""
        out: list[Transition] = []
        for label in list(self._open):
            ev = self._open[label]
            out.extend(self._end(label, ev.last_heard if t is None else t))
        return out


def make_tracker(settings: EventSettings | None, labels, camera: str = "default") -> EventTracker:
    """A tracker factory for hooks that build one per file or stream, e.g. the archive's
    ``events=functools.partial(make_tracker, settings)`` (a partial pickles, for Ray actors)."""
    return EventTracker(labels, settings, camera=camera)
