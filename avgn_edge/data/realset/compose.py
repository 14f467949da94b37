"""Composing audio-visual clips from the manifest's real material (deterministic per seed).

An event clip: a real scene (a photo with a slow pan, or real footage), the label's picture
composited into it (random scale and position, a slight drift, brightness, contrast, a small
rotation), and the label's recording (a little faster or slower, brighter or duller, looped with
random gaps from a random offset) mixed into real ambient sound at an SNR drawn
from ``snr``. A background clip: scene + ambient, often with a negative's sound and/or picture
(hard negatives). Test cases: ``sound_only`` (the event's sound, no picture), ``picture_only``
(the picture, ambient only) and ``mismatch`` (the picture of one label with the sound of another;
the folder is the SOUND's label, cases.json records both).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from ...errors import InputError
from . import sources
from .catalog import EVENT_LABELS

CLASSES = EVENT_LABELS + ("background",)
LAYOUT = """\
DIR/{train,val,test}/<class>/<class>_NNNN.mp4   classes: dog glass_break alarm vehicle speech background
DIR/{split}/clips.json        per clip: file, class, scene / picture / sound / ambient / negative entry ids, snr_db
DIR/cases/{sound_only,picture_only,mismatch}/<label>/*.mp4   test-split special cases (mismatch: folder = the
                                sound's label); DIR/cases/cases.json: file, case, sound label, picture label
DIR/stream/stream.mp4 + stream.json   a long test-split stream and its ground truth (events: label, t_start, t_end)
DIR/manifest.json             the manifest the set was built from (entry ids as in clips.json)
DIR/READY                     written last: counts per split and class; DIR/LAYOUT.md: this text
MP4: H.264 yuv420p + AAC mono 16 kHz; every clip is built from ONE split's material (split by source package).
"""


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    seconds: float = 4.0
    size: int = 256
    fps: int = 10
    sample_rate: int = 16000
    snr: tuple[float, float] = (-5.0, 20.0)

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))


def _alpha(rgba: np.ndarray) -> np.ndarray:
    """RGBA with a usable alpha: a picture on a plain white ground gets that ground cut out; a
    mostly see-through one (a photo of a clear glass) is made more opaque so that it shows."""
    a = rgba[..., 3]
    if a.min() < 250:
        seen = a[a > 16]
        if len(seen) and seen.mean() < 128:
            rgba = rgba.copy()
            rgba[..., 3] = np.clip(a.astype(np.float32) * (160.0 / seen.mean()), 0, 255).astype(np.uint8)
        return rgba
    border = np.concatenate([rgba[0, :, :3], rgba[-1, :, :3], rgba[:, 0, :3], rgba[:, -1, :3]])
    if (border.min(axis=1) > 235).mean() > 0.8:
        out = rgba.copy()
        mask = (rgba[..., :3].min(axis=2) > 235).astype(np.uint8)
        # only the white connected to the border is ground (white inside the object stays)
        n, lab = cv2.connectedComponents(mask)
        edge = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])).tolist()) - {0}
        out[..., 3] = np.where(np.isin(lab, list(edge)), 0, 255).astype(np.uint8)
        return out
    return rgba


def _trim(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] > 16)
    if not len(ys):
        return rgba
    return rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


class Material:
    """One split's decoded material, loaded once (scenes pre-shrunk)."""

    def __init__(self, entries: list[dict], spec: ClipSpec, root: Path | None = None, max_video_frames: int = 300):
        self.spec = spec
        self.sounds: dict[str, list[tuple[dict, np.ndarray]]] = {}
        self.pictures: dict[str, list[tuple[dict, np.ndarray]]] = {}
        self.scenes: list[tuple[dict, np.ndarray]] = []       # [F, H, W, 3] (F = 1 for a photo)
        for e in entries:
            if e["kind"] == "sound":
                a = sources.load_sound(e, spec.sample_rate, root)
                a = a / (np.abs(a).max() + 1e-9)
                self.sounds.setdefault(e["label"], []).append((e, a.astype(np.float32)))
            elif e["kind"] == "picture" and e["label"] == "scene":
                self.scenes.append((e, self._shrink(sources.load_picture(e, root)[None, ..., :3])))
            elif e["kind"] == "picture":
                p = _trim(_alpha(sources.load_picture(e, root)))
                if min(p.shape[:2]) >= 8:
                    self.pictures.setdefault(e["label"], []).append((e, p))
            elif e["kind"] == "video":
                self.scenes.append((e, self._shrink(sources.load_video(e, spec.fps, max_video_frames, root))))
        if not self.scenes:
            raise InputError("no scenes in this split's material")
        if not self.sounds.get("ambient"):
            raise InputError("no ambient sound in this split's material")

    def _shrink(self, frames: np.ndarray) -> np.ndarray:
        h, w = frames.shape[1:3]
        k = 1.4 * self.spec.size / min(h, w)
        if k >= 1:
            return frames
        return np.stack([cv2.resize(f, (int(w * k), int(h * k)), interpolation=cv2.INTER_AREA) for f in frames])


def scene_frames(scene: np.ndarray, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """``spec.frames`` square frames: a random crop that drifts slowly (and real motion in footage)."""
    n, h, w = scene.shape[:3]
    side0 = min(h, w) * rng.uniform(0.7, 1.0)
    start = int(rng.integers(0, max(1, n - spec.frames)))
    x0, y0 = rng.uniform(0, w - side0), rng.uniform(0, h - side0)
    dx, dy = rng.uniform(-0.08, 0.08, 2) * side0
    x1, y1 = np.clip(x0 + dx, 0, w - side0), np.clip(y0 + dy, 0, h - side0)
    out = np.empty((spec.frames, spec.size, spec.size, 3), np.uint8)
    for j in range(spec.frames):
        t = j / max(1, spec.frames - 1)
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        crop = scene[min(start + j, n - 1)][int(y):int(y + side0), int(x):int(x + side0)]
        out[j] = cv2.resize(crop, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
    return out


def paste(frames: np.ndarray, picture: np.ndarray, rng: np.random.Generator, scale=(0.35, 0.7),
          drift: float = 0.06) -> np.ndarray:
    """Composite an RGBA picture into every frame: random size and place, a slight drift."""
    size = frames.shape[1]
    ph, pw = picture.shape[:2]
    k = rng.uniform(*scale) * size / max(ph, pw)
    h, w = max(4, int(ph * k)), max(4, int(pw * k))
    pic = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng.random() < 0.5:
        pic = pic[:, ::-1]
    x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
    d = rng.uniform(-drift, drift, 2) * size
    out = frames.copy()
    a = pic[..., 3:] / 255.0
    for j in range(len(frames)):
        t = j / max(1, len(frames) - 1)
        x = int(np.clip(x0 + t * d[0], 0, size - w))
        y = int(np.clip(y0 + t * d[1], 0, size - h))
        region = out[j, y:y + h, x:x + w].astype(np.float32)
        out[j, y:y + h, x:x + w] = (a * pic[..., :3] + (1 - a) * region).astype(np.uint8)
    return out


def bed(audio: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of a recording looped from a random offset (an ambient bed)."""
    reps = int(np.ceil((n + len(audio)) / len(audio)))
    tiled = np.tile(audio, reps)
    off = int(rng.integers(0, len(audio)))
    return tiled[off:off + n]


def events_track(audio: np.ndarray, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The event's recording repeated with random gaps (0.2-1.0 s), from a random offset, over n samples."""
    out = np.zeros(n, np.float32)
    pos = int(rng.uniform(-0.5, 0.3) * min(len(audio), n))
    while pos < n:
        a0, o0 = max(0, -pos), max(0, pos)
        m = min(len(audio) - a0, n - o0)
        if m > 0:
            out[o0:o0 + m] += audio[a0:a0 + m]
        pos += len(audio) + int(rng.uniform(0.2, 1.0) * sr)
    return out


def vary_sound(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A recording played a little faster or slower (pitch with it, +-12%) and brighter or duller:
    few distinct recordings per label, so each is heard in many versions."""
    k = rng.uniform(0.88, 1.12)
    n = max(2, int(len(audio) / k))
    out = np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(np.float32)
    low = np.convolve(out, np.ones(5, np.float32) / 5, mode="same")
    return (low + rng.uniform(0.3, 1.7) * (out - low)).astype(np.float32)


def vary_picture(rgba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and a small rotation (+-10 degrees) of an RGBA picture."""
    out = rgba.astype(np.float32)
    out[..., :3] = np.clip((out[..., :3] - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20), 0, 255)
    h, w = rgba.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), 1.0)
    return cv2.warpAffine(out.astype(np.uint8), m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def _rms(x: np.ndarray) -> float:
    loud = np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9)
    return float(np.sqrt(np.mean(x[loud] ** 2))) if loud.any() else 1e-6


def mix(event: np.ndarray | None, ambient: np.ndarray, snr_db: float, rng: np.random.Generator,
        extra: np.ndarray | None = None) -> np.ndarray:
    amb = ambient / (_rms(ambient) + 1e-9)
    out = amb.copy()
    if event is not None:
        out = out + event * (10 ** (snr_db / 20.0)) / (_rms(event) + 1e-9)
    if extra is not None:       # a negative's sound, at a level like an event's
        out = out + extra * (10 ** (rng.uniform(0, 15) / 20.0)) / (_rms(extra) + 1e-9)
    return (out / (np.abs(out).max() + 1e-9) * rng.uniform(0.3, 0.9)).astype(np.float32)


def compose(mat: Material, kind: str, label: str, i: int, rng: np.random.Generator,
            picture_label: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(frames, audio, record) of clip i. kind: event | background | sound_only | picture_only | mismatch."""
    sp = mat.spec
    scene_e, scene = mat.scenes[int(rng.integers(len(mat.scenes)))]
    frames = scene_frames(scene, sp, rng)
    amb_e, amb = mat.sounds["ambient"][int(rng.integers(len(mat.sounds["ambient"])))]
    ambient = bed(amb, sp.samples, rng)
    rec = {"kind": kind, "class": label, "scene": scene_e["id"], "ambient": amb_e["id"]}
    snr = float(rng.uniform(*sp.snr))
    event = extra = None
    if kind == "background":
        if mat.pictures.get("negative") and rng.random() < 0.6:
            pe, pic = mat.pictures["negative"][int(rng.integers(len(mat.pictures["negative"])))]
            frames = paste(frames, pic, rng)
            rec["negative_picture"] = pe["id"]
        if mat.sounds.get("negative") and rng.random() < 0.6:
            ne, na = mat.sounds["negative"][i % len(mat.sounds["negative"])]
            extra = events_track(na, sp.samples, sp.sample_rate, rng)
            rec["negative_sound"] = ne["id"]
    else:
        sound_label = label
        pic_label = picture_label or label
        if kind in ("event", "sound_only", "mismatch"):
            se, sa = mat.sounds[sound_label][i % len(mat.sounds[sound_label])]
            event = events_track(vary_sound(sa, rng), sp.samples, sp.sample_rate, rng)
            rec.update(sound=se["id"], sound_label=sound_label, snr_db=round(snr, 2))
        if kind in ("event", "picture_only", "mismatch"):
            pics = mat.pictures[pic_label]
            pe, pic = pics[int(rng.integers(len(pics)))]
            frames = paste(frames, vary_picture(pic, rng), rng)
            rec.update(picture=pe["id"], picture_label=pic_label)
    audio = mix(event, ambient, snr, rng, extra)
    return frames, audio, rec
