"""The synthetic audio-visual benchmark: procedural, seeded, numpy only.

It is built so that recognising a clip needs what AVGN does:

* **sparse in time** - one event lasts 2-3 of the T snippets; the others hold distractors.
  A ``background`` share of clips has no event at all (distractors, silence and hiss):
  the label ``background``, the outcome a quiet camera needs.
* **small in space** - the class pattern is a period-4 luminance texture on an object
  of about half the patch size. The glance view is the frame downscaled 4x with the
  antialiasing (triangle) filter, which averages any period-4 zero-mean texture to
  exactly nothing, so the pattern is readable only in the full-resolution patch.
* **audio narrows, vision decides** - a label is ``family-pattern``: the sound family
  (bell, buzz, chirp, hum) is heard during the event and gives the object its coarse
  colour; the pattern (vertical stripes, horizontal stripes, checker) is only seen up
  close. Distractor snippets carry family sounds and family-coloured objects too, but
  never a matching colour and sound together, so the event is the one snippet run where
  what is heard matches what is seen.

Time is continuous: a timeline is a list of segments of ``snippet_period`` seconds whose
content is fixed for the segment; snippet i of a clip is the last frame of segment i
with the audio window that ends at the segment's end. The same timeline code renders
training clips, MP4 files and the real-time ``synth://`` stream.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Tuple, Union

import numpy as np

from ..config import BACKGROUND, SYNTH_CLASSES
from ..errors import InputError
from .synth_render import PATTERNS, TEXTURE_PERIOD, sound, texture

FAMILIES = ("bell", "buzz", "chirp", "hum")
LABELS = tuple(f"{f}-{p}" for f in FAMILIES for p in PATTERNS)     # the 12 event labels
CLASSES = LABELS + (BACKGROUND,)                                   # the synth presets' labels (+ no event)
if CLASSES != SYNTH_CLASSES:
    raise ImportError("data/synth.py's FAMILIES x PATTERNS differ from config.SYNTH_CLASSES: change both")
# Coarse colour of each family's objects (RGB), kept mid-range so the texture rarely clips.
FAMILY_COLORS = np.array([[195, 175, 65], [195, 65, 60], [65, 180, 95], [70, 95, 195]], np.float32)
GLANCE_FACTOR = 4
VIDEO_FPS = 12
# The splits. Training: the warm-up (the local encoder) on event clips at the default levels;
# the later stages with 30% clips without an event and each clip at its own noise and
# distractor level, so that streams noisier or busier than the default stay covered.
# Test (calibration: seed 2000).
WARMUP_DATA = "synth:seed=0,clips=20000,background=0"
TRAIN_DATA = "synth:seed=0,clips=20000,background=0.3,noise=0.05-0.65,distractors=0.2-0.9"
TEST_DATA = "synth:seed=1000,clips=1000"

Level = Union[float, Tuple[float, float]]       # a fixed value, or a (lo, hi) range drawn per clip


@dataclass(frozen=True)
class SynthSpec:
    """Knobs and geometry of the benchmark.  Geometry comes from the model config.

    ``distractors`` and ``noise`` are a value or a (lo, hi) range; with a range each clip
    draws its own level (training covers the streams users have). ``background`` is the
    share of clips with no event at all (label ``background``: distractors, silence, hiss).
    """

    seed: int = 0
    clips: int = 1000
    distractors: Level = 0.5     # probability per snippet of a distractor object / sound
    noise: Level = 0.25          # 0..1: pixel noise and background hiss
    background: float = 0.25     # share of clips without an event
    frame_size: int = 128
    patch_size: int = 32
    num_snippets: int = 8
    min_event: int = 2           # events last at least this many snippets (>= k)
    snippet_period: float = 0.25
    sample_rate: int = 16000
    audio_window: float = 0.25
    fps: int = VIDEO_FPS

    def __post_init__(self):
        for name in ("distractors", "noise"):
            lo, hi = _bounds(getattr(self, name))
            if not 0.0 <= lo <= hi <= 1.0:
                raise InputError(f"synthetic {name} must be in [0, 1] (a value or LO-HI), got {getattr(self, name)}")
        if not 0.0 <= self.background <= 1.0:
            raise InputError(f"synthetic background must be in [0, 1], got {self.background}")
        if self.clips < 1:
            raise InputError(f"clips must be >= 1, got {self.clips}")
        if self.frame_size % TEXTURE_PERIOD:
            raise InputError(f"frame_size must be a multiple of {TEXTURE_PERIOD}")
        if self.min_event > self.num_snippets:
            raise InputError(f"events of {self.min_event} snippets do not fit in {self.num_snippets}")

    @classmethod
    def for_model(cls, cfg, geometry: str = "strict", **knobs) -> "SynthSpec":
        """``geometry="any"``: clips for a model of any frame/glance sizes (speed measurements of
        e.g. the paper preset; the glance then cannot see what the benchmark hides in it)."""
        if geometry == "strict" and cfg.frame_size != GLANCE_FACTOR * cfg.glance_size:
            raise InputError(f"the synthetic benchmark needs frame_size = {GLANCE_FACTOR} x glance_size "
                             f"(got {cfg.frame_size} and {cfg.glance_size})",
                             hint="add geometry=any to the synth: options for clips that only measure speed")
        return cls(frame_size=cfg.frame_size, patch_size=cfg.patch_size, num_snippets=cfg.num_snippets,
                   min_event=max(cfg.top_k, 2), snippet_period=cfg.snippet_period,
                   sample_rate=cfg.sample_rate, audio_window=cfg.audio_window, **knobs)

    @property
    def audio_samples(self) -> int:
        return int(round(self.audio_window * self.sample_rate))

    @property
    def segment_samples(self) -> int:
        return int(round(self.snippet_period * self.sample_rate))

    def fixed(self, rng: np.random.Generator) -> "SynthSpec":
        """This spec with any ranged level drawn from ``rng`` (unchanged when all are fixed)."""
        draw = lambda v: float(rng.uniform(*v)) if isinstance(v, tuple) else v       # noqa: E731
        return dataclasses.replace(self, distractors=draw(self.distractors), noise=draw(self.noise))


def _bounds(level: Level) -> tuple[float, float]:
    return (float(level[0]), float(level[1])) if isinstance(level, tuple) else (float(level), float(level))


def _level(text: str) -> Level:
    lo, sep, hi = text.partition("-")
    return (float(lo), float(hi)) if sep else float(text)


def parse_knobs(text: str) -> dict:
    """``seed=3,clips=500,distractors=0.5,noise=0.1-0.6,background=0.3[,geometry=any]`` -> dict (values typed)."""
    types = {"seed": int, "clips": int, "distractors": _level, "noise": _level, "background": float,
             "geometry": str}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in types:
            raise InputError(f"bad synthetic data option {part!r}",
                             hint="use synth:seed=S,clips=N,distractors=D,noise=X,background=B "
                                  "(distractors and noise: a value or a range LO-HI)")
        try:
            out[key] = types[key](value)
        except ValueError:
            raise InputError(f"synthetic data option {key} needs a number, got {value!r}") from None
    if out.get("geometry", "strict") not in ("strict", "any"):
        raise InputError(f"synthetic data option geometry must be strict or any, got {out['geometry']!r}")
    return out


# ----------------------------------------------------------------------------- scene

@dataclass
class Obj:
    box: tuple[int, int, int, int]      # x0, y0, x1, y1 (pixels, exclusive end)
    color: np.ndarray                   # RGB float
    pattern: int = -1                   # index into PATTERNS, -1 = flat distractor
    amp: float = 0.0


@dataclass
class Sound:
    kind: str                           # a family name or "noise"
    amp: float
    seed: int


@dataclass
class Segment:
    objects: list[Obj] = field(default_factory=list)
    sounds: list[Sound] = field(default_factory=list)
    event: int = -1                     # index of the event this segment belongs to


@dataclass
class Event:
    label: int
    start: int                          # first segment
    length: int
    box: tuple[int, int, int, int]

    @property
    def family(self) -> int:
        return self.label // len(PATTERNS)

    @property
    def pattern(self) -> int:
        return self.label % len(PATTERNS)


class Timeline:
    """Segments of fixed content, with a background; renders frames and audio at any time."""

    def __init__(self, spec: SynthSpec, rng: np.random.Generator):
        self.spec = spec
        self.rng = rng
        self.segments: list[Segment] = []
        self.events: list[Event] = []
        s = spec.frame_size
        base = rng.uniform(70, 150)
        grid = base + rng.uniform(-30, 30, size=(4, 4, 3)) + rng.uniform(-15, 15, size=(1, 1, 3))
        import cv2  # base dependency; imported here to keep module import light
        self.background = cv2.resize(grid.astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        self._audio_cache: dict[int, np.ndarray] = {}
        self._hiss_seed = int(rng.integers(2**31))

    # -- building
    def _random_box(self, avoid: tuple | None = None) -> tuple[int, int, int, int]:
        sp = self.spec
        lo, hi = int(round(0.45 * sp.patch_size)), int(round(0.7 * sp.patch_size))
        for _ in range(50):
            side = int(self.rng.integers(lo, hi + 1))
            x0 = int(self.rng.integers(2, sp.frame_size - side - 1))
            y0 = int(self.rng.integers(2, sp.frame_size - side - 1))
            box = (x0, y0, x0 + side, y0 + side)
            if avoid is None or not _overlap(box, avoid, margin=4):
                return box
        return box

    def _color(self, family: int) -> np.ndarray:
        return np.clip(FAMILY_COLORS[family] + self.rng.uniform(-15, 15, 3), 50, 205).astype(np.float32)

    def _sound(self, kind: str) -> Sound:
        return Sound(kind, float(self.rng.uniform(0.25, 0.6)), int(self.rng.integers(2**31)))

    def add_distractor_segment(self):
        d, rng = self.spec.distractors, self.rng
        seg = Segment()
        sound_family = -1
        if rng.random() < d:
            sound_family = int(rng.integers(len(FAMILIES)))
            seg.sounds.append(self._sound(FAMILIES[sound_family]))
        if rng.random() < d:
            choices = [f for f in range(len(FAMILIES)) if f != sound_family]
            seg.objects.append(Obj(self._random_box(), self._color(int(rng.choice(choices)))))
        if rng.random() < d / 2:
            seg.sounds.append(self._sound("noise"))
        self.segments.append(seg)

    def add_event(self, label: int, length: int):
        rng, d = self.rng, self.spec.distractors
        family, pattern = divmod(label, len(PATTERNS))
        box = self._random_box()
        event = Event(label, len(self.segments), length, box)
        obj = Obj(box, self._color(family), pattern, float(rng.uniform(40, 56)))
        sound_amp = float(rng.uniform(0.25, 0.6))
        for _ in range(length):
            seg = Segment(objects=[obj], event=len(self.events),
                          sounds=[Sound(FAMILIES[family], sound_amp, int(rng.integers(2**31)))])
            if rng.random() < d:
                other = [f for f in range(len(FAMILIES)) if f != family]
                seg.objects.append(Obj(self._random_box(avoid=box), self._color(int(rng.choice(other)))))
            if rng.random() < d / 2:
                seg.sounds.append(self._sound("noise"))
            self.segments.append(seg)
        self.events.append(event)

    # -- rendering
    def segment_at(self, t: float) -> int:
        return int(np.floor(t / self.spec.snippet_period + 1e-9))

    def render_segment(self, i: int, noise_seed: int | None = None) -> np.ndarray:
        """One RGB uint8 frame of segment i (pixel noise seeded by noise_seed)."""
        img = self.background.copy()
        seg = self.segments[i] if 0 <= i < len(self.segments) else Segment()
        for obj in seg.objects:
            x0, y0, x1, y1 = obj.box
            patch = np.broadcast_to(obj.color, (y1 - y0, x1 - x0, 3)).copy()
            if obj.pattern >= 0:
                patch += (obj.amp * texture(obj.pattern, obj.box))[..., None]
            img[y0:y1, x0:x1] = patch
        sigma = 4.0 + 24.0 * self.spec.noise
        rng = np.random.default_rng(noise_seed)
        img += rng.standard_normal(img.shape, dtype=np.float32) * sigma
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def segment_audio(self, i: int) -> np.ndarray:
        if i not in self._audio_cache:
            sp = self.spec
            n = sp.segment_samples
            wave = np.zeros(n, np.float32)
            seg = self.segments[i] if 0 <= i < len(self.segments) else Segment()
            for snd in seg.sounds:
                wave += snd.amp * sound(snd.kind, n, sp.sample_rate, np.random.default_rng(snd.seed))
            hiss = np.random.default_rng([self._hiss_seed, i + 1_000_000]).standard_normal(n)
            wave += (0.005 + 0.08 * sp.noise) * hiss.astype(np.float32)
            if len(self._audio_cache) > 64:
                self._audio_cache.pop(next(iter(self._audio_cache)))
            self._audio_cache[i] = np.clip(wave, -1, 1)
        return self._audio_cache[i]

    def render_audio(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of the timeline's audio (sample 0 = time 0; negatives = hiss only)."""
        n = self.spec.segment_samples
        out = np.empty(stop - start, np.float32)
        pos = start
        while pos < stop:
            seg, off = divmod(pos, n)
            take = min(n - off, stop - pos)
            out[pos - start:pos - start + take] = self.segment_audio(seg)[off:off + take]
            pos += take
        return out

    def snippet(self, i: int, noise_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frame and audio window of snippet i (the last frame of segment i)."""
        end = (i + 1) * self.spec.segment_samples
        return self.render_segment(i, noise_seed), self.render_audio(end - self.spec.audio_samples, end)


def _overlap(a, b, margin=0) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


# ----------------------------------------------------------------------------- clips

@dataclass
class Clip:
    frames: np.ndarray          # [T, S, S, 3] uint8 RGB, one frame per snippet
    audio: np.ndarray           # [T, N] float32, the window ending at each snippet's frame
    label: int                  # index into CLASSES (len(LABELS) = background)
    event_snippets: np.ndarray  # indices of the snippets that show the event (empty: background)
    boxes: np.ndarray           # [T, 4] event object box (x0, y0, x1, y1), NaN outside the event
    timeline: Timeline = dataclasses.field(repr=False, default=None)


def clip_timeline(spec: SynthSpec, index: int) -> Timeline:
    """The timeline of clip ``index``: T segments with exactly one event, or (a ``background``
    share of clips) none. The levels and the background draw come from their own random
    stream, so with fixed levels an event clip is the same whatever ``background`` is."""
    side = np.random.default_rng([spec.seed, index, 1])
    quiet = side.random() < spec.background
    rng = np.random.default_rng([spec.seed, index])
    tl = Timeline(spec.fixed(side), rng)
    T = spec.num_snippets
    if quiet:
        while len(tl.segments) < T:
            tl.add_distractor_segment()
        return tl
    length = int(rng.integers(spec.min_event, min(spec.min_event + 1, T) + 1))
    start = int(rng.integers(0, T - length + 1))
    label = int(rng.integers(len(LABELS)))
    for _ in range(start):
        tl.add_distractor_segment()
    tl.add_event(label, length)
    while len(tl.segments) < T:
        tl.add_distractor_segment()
    return tl


def frames_per_segment(spec: SynthSpec) -> int:
    return max(1, int(round(spec.snippet_period * spec.fps)))


def make_clip(spec: SynthSpec, index: int) -> Clip:
    """Clip ``index``: the T snippet frames are exactly the frames its MP4 file holds (before
    encoding): the last video frame of each segment, with the same pixel noise."""
    tl = clip_timeline(spec, index)
    T, per = spec.num_snippets, frames_per_segment(spec)
    frames, audio = zip(*(tl.snippet(i, noise_seed=(spec.seed, index, (i + 1) * per - 1)) for i in range(T)))
    boxes = np.full((T, 4), np.nan, np.float32)
    if not tl.events:
        return Clip(np.stack(frames), np.stack(audio), len(LABELS), np.arange(0), boxes, tl)
    ev = tl.events[0]
    boxes[ev.start:ev.start + ev.length] = ev.box
    return Clip(np.stack(frames), np.stack(audio), ev.label,
                np.arange(ev.start, ev.start + ev.length), boxes, tl)


def clip_video(spec: SynthSpec, index: int) -> tuple[list[np.ndarray], np.ndarray]:
    """All video frames (at ``spec.fps``) and the audio track of clip ``index``."""
    tl = clip_timeline(spec, index)
    per = frames_per_segment(spec)
    n = spec.num_snippets * per
    frames = [tl.render_segment(j // per, noise_seed=(spec.seed, index, j)) for j in range(n)]
    return frames, tl.render_audio(0, spec.num_snippets * spec.segment_samples)


class SynthClips:
    """Random-access view of ``spec.clips`` clips; clip i is the same on every call."""

    def __init__(self, spec: SynthSpec):
        self.spec = spec

    def __len__(self) -> int:
        return self.spec.clips

    def __getitem__(self, i: int) -> Clip:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return make_clip(self.spec, i)

    labels = LABELS
