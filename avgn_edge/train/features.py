"""Frozen pretrained encoders: their features computed once per clip, not once per step.

A recipe whose glance and local encoders are frozen (``home``: ImageNet Lite0 trunks) would
spend most of each step running them again on the same frames: the glance trunk on every
snippet and the local trunk densely on every full frame (the teacher and the dense
baseline). ``FrozenFeatures`` decodes each clip once, runs both trunks once (eval mode, no
gradient; with a frozen audio CNN, that too: its pooled output) and serves the samples with the results attached; the recipe's losses take them
from the batch (``gmap``/``gvec``/``dmaps``/``apool``) instead of recomputing. Exact, not an
approximation: with frozen weights and eval-mode batch norm the numbers are the same. The audio
projection, AV-TeST, AESPA, the policy and the heads still run and train every step, and
the k patches still go through the local trunk at the policy's centres.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

log = logging.getLogger(__name__)
CACHED = ("glance", "local")


def applies(recipe) -> bool:
    return any(n in recipe.frozen for n in CACHED) or audio_frozen(recipe)


def audio_frozen(recipe) -> bool:
    return "audio.cnn" in recipe.frozen or "audio" in recipe.frozen


def fit_input_norm(model, dataset, clips: int = 64):
    """Set the audio CNN's input batch norm (a frozen pretrained trunk never updates it) to the
    log-mel mean and variance of up to ``clips`` training clips, so the trunk sees unit-scale input."""
    norm = model.audio.cnn[0]
    if not isinstance(norm, torch.nn.BatchNorm2d) or norm.running_mean.item() != 0 or norm.running_var.item() != 1:
        return                   # not a fresh pretrained trunk: a trained model keeps its norm
    idx = np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).astype(int)
    with torch.no_grad():
        mel = torch.cat([model.audio.frontend(torch.from_numpy(dataset[int(i)].audio.astype(np.float32)))
                         for i in idx])
    norm.running_mean.fill_(mel.mean().item())
    norm.running_var.fill_(mel.var().item())
    log.info("audio input norm: log-mel mean %.2f, std %.2f over %d clips", mel.mean(), mel.std(), len(idx))


class FrozenFeatures:
    """``dataset`` with each Sample's frozen features precomputed (float16 in memory)."""

    def __init__(self, dataset, model, recipe, batch: int = 16, progress: bool = True):
        self.dataset = dataset
        self.labels = getattr(dataset, "labels", None)
        self.samples = []
        t0 = time.perf_counter()
        was = model.training
        model.eval()
        n = len(dataset)
        audio = audio_frozen(recipe)
        glance, local = ("glance" in recipe.frozen), ("local" in recipe.frozen)
        if audio:
            fit_input_norm(model, dataset)
        for start in range(0, n, batch):
            group = [dataset[i] for i in range(start, min(n, start + batch))]
            frames = torch.from_numpy(np.stack([s.frames for s in group]))
            with torch.no_grad():
                if glance:
                    gmap, gvec = model.encode_glance(model.glance_input(frames))
                if local:
                    dmaps = model.dense_maps(model.full_input(frames))
                if audio:
                    wave = torch.from_numpy(np.stack([s.audio for s in group]).astype(np.float32))
                    apool = model.audio.pooled(wave.flatten(0, 1)).view(len(group), wave.shape[1], -1)
            for j, s in enumerate(group):
                feats = {}
                if glance:
                    feats.update(gmap=gmap[j].half().numpy(), gvec=gvec[j].half().numpy())
                if local:
                    feats["dmaps"] = dmaps[j].half().numpy()
                if audio:
                    feats["apool"] = apool[j].numpy()
                self.samples.append(dataclasses.replace(s, features=feats))
            if progress and (start // batch) % 10 == 0:
                log.info("frozen features: %d/%d clips", min(n, start + batch), n)
        model.train(was)
        self.seconds = time.perf_counter() - t0
        log.info("frozen glance and local features of %d clips in %.1f s", n, self.seconds)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


def from_batch(batch, name: str):
    """A cached feature of the batch as float32, or None when the batch has none."""
    v = batch.get(name)
    return None if v is None else v.float()
