"""Which fusion generalises to unseen packages? Heads retrained on a home model's frozen features.

    python scripts/home_fusion_probe.py --checkpoint home --set /work/cache/realav/v2 [--cache DIR] [--test]

Extracts, once per split, what the checkpoint's frozen parts give each clip (glance and audio vectors of
every snippet, the chosen snippets and their patch vectors), then retrains the AV, audio-only and
glance-only heads (model/head.py) on the train split under each recipe (plain, modality dropout, label
smoothing, feature noise) for 3 seeds, and fits the late fusion (model/fusion.py) on the validation
split. Prints validation top-1 (and, with --test, the test split's: look at it once).
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgn_edge.data.datasets import open_dataset  # noqa: E402
from avgn_edge.model.avgn import take  # noqa: E402
from avgn_edge.model.fusion import fit  # noqa: E402
from avgn_edge.model.head import SnippetHead  # noqa: E402
from avgn_edge.train.batches import loader  # noqa: E402
from avgn_edge.train.checkpoint import load_checkpoint  # noqa: E402
from avgn_edge.train.recipe import drop_modalities  # noqa: E402

RECIPES = {"plain": {}, "modality dropout": dict(p_vis=0.5, p_aud=0.15),
           "dropout + label smoothing": dict(p_vis=0.5, p_aud=0.15, smooth=0.1), "feature noise": dict(noise=1.0)}


@torch.no_grad()
def features(model, uri, cache):
    out = {k: [] for k in ("gvec", "avec", "lvec", "sal", "idx", "y")}
    for b in loader(open_dataset(uri, model.cfg, cache=cache), 16, shuffle=False, workers=0):
        gmap, gvec = model.encode_glance(model.glance_input(b["frames"]))
        avec = model.encode_audio(b["audio"])
        d = model.decide(gmap, gvec, avec)
        lvec = model.focus(model.full_input(b["frames"]), d.indices, d.centres)
        for k, v in zip(out, (gvec, avec, lvec, d.saliency, d.indices, b["label"])):
            out[k].append(v)
    return {k: torch.cat(v) for k, v in out.items()}


def train_heads(tr, c, hidden, seed, steps=600, p_vis=0.0, p_aud=0.0, smooth=0.0, noise=0.0):
    torch.manual_seed(seed)
    dims = [tr["gvec"].shape[-1], tr["avec"].shape[-1], tr["lvec"].shape[-1]]
    heads = [SnippetHead(dims, hidden, c), SnippetHead(dims[1:2], hidden, c), SnippetHead(dims[:1], hidden, c)]
    opt = torch.optim.AdamW([p for h in heads for p in h.parameters()], lr=1e-3, weight_decay=1e-4)
    g, a, s = take(tr["gvec"], tr["idx"]), take(tr["avec"], tr["idx"]), take(tr["sal"], tr["idx"])
    for _ in range(steps):
        i = torch.randint(0, len(tr["y"]), (16,))
        gi, ai, li = g[i], a[i], tr["lvec"][i]
        if noise:
            gi, li = gi + noise * gi.std() * torch.randn_like(gi), li + noise * li.std() * torch.randn_like(li)
        gi, ai, li = drop_modalities(gi, ai, li, p_vis, p_aud)
        y = tr["y"][i]
        loss = sum(F.cross_entropy(z, y, label_smoothing=smooth) for z in
                   (heads[0](gi, ai, li, prior=s[i]), heads[1](tr["avec"][i]), heads[2](tr["gvec"][i])))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [h.eval() for h in heads]


@torch.no_grad()
def logits(heads, d):
    av, au, gl = heads
    return {"audio": au(d["avec"]), "glance": gl(d["gvec"]),
            "av": av(take(d["gvec"], d["idx"]), take(d["avec"], d["idx"]), d["lvec"], prior=take(d["sal"], d["idx"]))}


def fused(z, w):
    return sum(wi * z[k].log_softmax(-1) for wi, k in zip(w, ("audio", "glance", "av")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="home")
    ap.add_argument("--set", default="/work/cache/realav/v2")
    ap.add_argument("--cache", help="snippet cache folder (decode once)")
    ap.add_argument("--test", action="store_true", help="also print the test split's figures")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.checkpoint)
    splits = ("train", "val") + (("test",) if a.test else ())
    data = {s: features(model, f"{a.set}/{s}", a.cache) for s in splits}
    acc = lambda z, y: float((z.argmax(-1) == y).float().mean())      # noqa: E731
    for name, kw in RECIPES.items():
        for seed in range(3):
            heads = train_heads(data["train"], model.cfg.num_classes, model.cfg.head_hidden, seed, **kw)
            row = []
            for s in splits[1:]:
                z, y = logits(heads, data[s]), data[s]["y"]
                if s == "val":
                    w = fit(z["audio"], z["glance"], z["av"], y)
                row.append(f"{s}: AV head {acc(z['av'], y):.3f} audio {acc(z['audio'], y):.3f} "
                           f"glance {acc(z['glance'], y):.3f} fused{w} {acc(fused(z, w), y):.3f}")
            print(f"{name:26s} seed {seed}  " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
