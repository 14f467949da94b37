"""Figures of the home model on the real audio-visual set (docs/results.md, "Real events").

    python scripts/home_results.py --checkpoint home --set /work/cache/realav/v1 [--json out.json]

Per class on the test split (clips from source packages training never saw): recall and precision
of AVGN, its audio-only and glance-only heads and dense, with the counts of distinct test
recordings (sounds) and pictures behind each class (from the set's clips.json); on the set's
cases: sound-only, picture-only and mismatched clips, what the model says and what carried it
(heard / seen / both, runtime/modality.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.runtime.modality import carried  # noqa: E402
from avgn_edge.train.batches import loader  # noqa: E402
from avgn_edge.train.checkpoint import load_checkpoint  # noqa: E402

ARMS = ("avgn", "av_head", "audio_only", "glance_only", "dense")   # av_head: AVGN's AV head before late fusion


@torch.no_grad()
def predict(model, uri: str, batch: int = 16, dense: bool = True) -> dict[str, np.ndarray]:
    ds = open_dataset(uri, model.cfg)
    out = defaultdict(list)
    for b in loader(ds, batch, shuffle=False, workers=0):
        frames, audio = b["frames"], b["audio"]
        gmap, gvec = model.encode_glance(model.glance_input(frames))
        avec = model.encode_audio(audio)
        images = model.full_input(frames)
        d = model.decide(gmap, gvec, avec)
        lvec = model.focus(images, d.indices, d.centres)
        out["avgn"].append(model.classify(gvec, avec, lvec, d.saliency, d.indices).softmax(-1))
        out["av_head"].append(model.av_logits(gvec, avec, lvec, d.saliency, d.indices).softmax(-1))
        out["audio_only"].append(model.audio_head(avec).softmax(-1))
        out["glance_only"].append(model.glance_head(gvec).softmax(-1))
        if dense:
            out["dense"].append(model.dense_logits(gvec, avec, model.dense_maps(images)).softmax(-1))
        out["y"].append(b["label"])
    res = {k: torch.cat(v).numpy() for k, v in out.items()}
    res["files"] = [str(i.path) for i in ds.items]
    return res


def per_class(p: dict, labels) -> dict:
    y = p["y"]
    out = {}
    for arm in ARMS:
        pred = p[arm].argmax(1)
        rows = {}
        for c, name in enumerate(labels):
            tp = int(((pred == c) & (y == c)).sum())
            n_true, n_pred = int((y == c).sum()), int((pred == c).sum())
            rows[name] = {"recall": tp / n_true if n_true else None, "precision": tp / n_pred if n_pred else None,
                          "clips": n_true}
        out[arm] = {"top1": float((pred == y).mean()), "classes": rows}
    return out


def recordings(set_dir: Path, split: str) -> dict:
    clips = json.loads((set_dir / split / "clips.json").read_text())
    out = defaultdict(lambda: {"sounds": set(), "pictures": set()})
    for c in clips:
        if c.get("sound"):
            out[c["class"]]["sounds"].add(c["sound"])
        if c.get("picture"):
            out[c["class"]]["pictures"].add(c["picture"])
    return {k: {"distinct_sounds": len(v["sounds"]), "distinct_pictures": len(v["pictures"])} for k, v in out.items()}


def cases(model, set_dir: Path) -> dict:
    labels = model.cfg.labels
    meta = {str(Path(c["file"]).name): c for c in json.loads((set_dir / "cases" / "cases.json").read_text())}
    out = {}
    for kind in ("sound_only", "picture_only", "mismatch"):
        folder = set_dir / "cases" / kind
        if not folder.is_dir():
            continue
        p = predict(model, str(folder))
        rows = defaultdict(lambda: defaultdict(int))
        for i, f in enumerate(p["files"]):
            c = meta.get(Path(f).name, {})
            want = c.get("picture_label") if kind == "picture_only" else c.get("sound_label")
            for arm in ARMS:
                k = int(p[arm][i].argmax())
                rows[arm]["n"] += 1
                rows[arm]["correct"] += int(labels[k] == want)
                if kind == "mismatch":
                    rows[arm]["says_picture"] += int(labels[k] == c.get("picture_label"))
            k = int(p["avgn"][i].argmax())
            rows["carried"][carried(float(p["audio_only"][i][k]), float(p["glance_only"][i][k]))] += 1
        out[kind] = {arm: ({"accuracy": r["correct"] / r["n"], "n": r["n"],
                            **({"says_picture": r["says_picture"] / r["n"]} if kind == "mismatch" else {})}
                           if arm != "carried" else dict(r)) for arm, r in rows.items()}
    return out


def carried_on_events(p: dict, labels) -> dict:
    counts = defaultdict(int)
    for i in range(len(p["y"])):
        k = int(p["avgn"][i].argmax())
        if labels[k] != "background":
            counts[carried(float(p["audio_only"][i][k]), float(p["glance_only"][i][k]))] += 1
    return dict(counts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="home")
    ap.add_argument("--set", default="/work/cache/realav/v1", help="the real audio-visual set (realset)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, prov = load_checkpoint(a.checkpoint)
    set_dir = Path(a.set)
    p = predict(model, str(set_dir / a.split))
    r = {"checkpoint": a.checkpoint, "split": a.split, "clips": int(len(p["y"])),
         "per_class": per_class(p, model.cfg.labels), "recordings": recordings(set_dir, a.split),
         "carried_on_event_clips": carried_on_events(p, model.cfg.labels), "cases": cases(model, set_dir)}
    for arm in ARMS:
        print(f"{arm:12s} top-1 {r['per_class'][arm]['top1']:.3f}")
    for name, row in r["per_class"]["avgn"]["classes"].items():
        rec = r["recordings"].get(name, {})
        print(f"  {name:12s} recall {row['recall']}  precision {row['precision']}  clips {row['clips']}  {rec}")
    print(json.dumps(r["cases"], indent=1))
    print("carried on event clips:", r["carried_on_event_clips"])
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
