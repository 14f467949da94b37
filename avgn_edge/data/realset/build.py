"""Writing the real audio-visual set: clips per split and class, the test split's special cases,
READY (counts) and LAYOUT.md. Every clip comes from one split's material only; seeds are fixed
per (seed, split, class, index), so a rebuild gives the same clips."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ...media import write_video
from .compose import CLASSES, LAYOUT, ClipSpec, Material, compose
from .catalog import EVENT_LABELS

log = logging.getLogger(__name__)

DEFAULT_COUNTS = {"train": 70, "val": 20, "test": 30}     # clips per class
CASES = ("sound_only", "picture_only", "mismatch")


def _rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng([seed] + [sum(ord(c) * 31 ** k for k, c in enumerate(str(x))) % 2 ** 31
                                           for x in keys])


def split_entries(m: dict, split: str) -> list[dict]:
    return [e for e in m["entries"] if e["split"] == split]


def _write(path: Path, frames, audio, spec: ClipSpec):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, spec.fps, audio, spec.sample_rate, crf=20)


def usable_labels(mat: Material, labels=EVENT_LABELS) -> list[str]:
    """Event labels this split can show as a whole event (a sound and a picture)."""
    return [lab for lab in labels if mat.sounds.get(lab) and mat.pictures.get(lab)]


def build_split(m: dict, split: str, out: Path, per_class: int, spec: ClipSpec, seed: int = 0,
                root: Path | None = None, labels=CLASSES, mat: Material | None = None) -> list[dict]:
    mat = mat or Material(split_entries(m, split), spec, root)
    ok = usable_labels(mat)
    missing = [lab for lab in labels if lab != "background" and lab not in ok]
    if missing:
        log.warning("%s: no sound or no picture for %s: those classes are left out", split, ", ".join(missing))
    records = []
    for lab in labels:
        if lab != "background" and lab not in ok:
            continue
        for i in range(per_class):
            rng = _rng(seed, split, lab, i)
            frames, audio, rec = compose(mat, "background" if lab == "background" else "event", lab, i, rng)
            f = out / split / lab / f"{lab}_{i:04d}.mp4"
            _write(f, frames, audio, spec)
            records.append(dict(rec, file=str(f.relative_to(out))))
    (out / split).mkdir(parents=True, exist_ok=True)
    (out / split / "clips.json").write_text(json.dumps(records, indent=0) + "\n")
    return records


def build_cases(m: dict, out: Path, per_label: int, spec: ClipSpec, seed: int = 0, root: Path | None = None,
                mat: Material | None = None) -> list[dict]:
    mat = mat or Material(split_entries(m, "test"), spec, root)
    ok = usable_labels(mat)
    records = []
    for case in CASES:
        for li, lab in enumerate(ok):
            for i in range(per_label):
                rng = _rng(seed, "cases", case, lab, i)
                other = ok[(li + 1 + i % (len(ok) - 1)) % len(ok)] if len(ok) > 1 else lab
                frames, audio, rec = compose(mat, case, lab, i, rng, picture_label=other if case == "mismatch" else None)
                f = out / "cases" / case / lab / f"{lab}_{i:04d}.mp4"
                _write(f, frames, audio, spec)
                records.append(dict(rec, file=str(f.relative_to(out)), case=case,
                                    sound_label=rec.get("sound_label"), picture_label=rec.get("picture_label")))
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "cases" / "cases.json").write_text(json.dumps(records, indent=0) + "\n")
    return records


def build(m: dict, out: Path, counts: dict | None = None, cases_per_label: int = 10, spec: ClipSpec | None = None,
          seed: int = 0, root: Path | None = None, splits=("train", "val", "test")) -> dict:
    """The whole set into ``out`` (replaced atomically at the end: READY is there only when complete)."""
    spec = spec or ClipSpec()
    counts = dict(DEFAULT_COUNTS, **(counts or {}))
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    summary: dict = {"spec": {"seconds": spec.seconds, "size": spec.size, "fps": spec.fps,
                              "sample_rate": spec.sample_rate, "snr_db": list(spec.snr)}, "seed": seed, "clips": {}}
    for split in splits:
        mat = Material(split_entries(m, split), spec, root)
        recs = build_split(m, split, tmp, counts[split], spec, seed, root, mat=mat)
        summary["clips"][split] = _count(recs, "class")
        summary.setdefault("sources", {})[split] = _distinct(recs)
        if split == "test" and cases_per_label:
            crecs = build_cases(m, tmp, cases_per_label, spec, seed, root, mat=mat)
            summary["clips"]["cases"] = {c: _count([r for r in crecs if r["case"] == c], "class") for c in CASES}
        log.info("%s: %d clips (%.0f s so far)", split, len(recs), time.perf_counter() - t0)
    summary["build_seconds"] = round(time.perf_counter() - t0, 1)
    (tmp / "manifest.json").write_text(json.dumps(m, ensure_ascii=False) + "\n")    # the ids clips.json names
    (tmp / "LAYOUT.md").write_text("# Real audio-visual set (avgn-edge realset)\n\n```\n" + LAYOUT + "```\n")
    (tmp / "READY").write_text(json.dumps(summary, indent=1) + "\n")
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out)
    return summary


def _count(recs: list[dict], key: str) -> dict:
    c: dict = {}
    for r in recs:
        c[r[key]] = c.get(r[key], 0) + 1
    return c


def _distinct(recs: list[dict]) -> dict:
    """Distinct source recordings and pictures per class (what the clips were made of)."""
    out: dict = {}
    for r in recs:
        d = out.setdefault(r["class"], {"sounds": set(), "pictures": set()})
        if r.get("sound"):
            d["sounds"].add(r["sound"])
        if r.get("picture"):
            d["pictures"].add(r["picture"])
    return {k: {kk: len(vv) for kk, vv in v.items()} for k, v in out.items()}

