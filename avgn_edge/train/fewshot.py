"""``avgn-edge train --from MODEL --data MY_CLIPS/``: your own labels from a few clips.

Starts from a trained model (``home``, ``synth``, a checkpoint or run folder) and its pretrained
trunks, frozen and computed once per clip (features.py), so a fine-tune takes minutes on a CPU.

``--labels keep`` (the default): the model keeps its labels and adds the data's new ones (the
data's clips of a base label, if any, train that label too). Everything the base model learned
stays as it was - trunks, AV-TeST, AESPA, the policy, the heads' hidden layers and the rows of
the base labels - and only the class rows of the new labels train (in every head and the
evidence map): a linear probe on the base model's features, which cannot forget the base labels
for lack of their clips. ``--labels replace``: the model's labels become the data's; the trunks
stay frozen, everything after them trains (from the base weights; the class rows anew).
``--finetune-encoders`` also trains the glance and audio trunks (slower: nothing to cache for them).
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from ..config import BACKGROUND
from ..errors import InputError
from .recipe import Recipe

log = logging.getLogger(__name__)

FEWSHOT = Recipe(batch_size=8, warmup_steps=80, glance_steps=60, finetune_steps=0, lr=1e-3, weight_decay=0.0,
                 data="", warmup_data="", frozen=("glance", "local", "audio.cnn"))
# the modules whose last layer has one row per class
CLASS_LAYERS = ("head.classify", "glance_head.classify", "audio_head.classify", "dense_head.classify", "evidence")
BASE_FROZEN = ("glance", "local", "audio", "avtest", "aespa", "policy", "head.mlp", "head.gate", "glance_head.mlp",
               "glance_head.gate", "audio_head.mlp", "audio_head.gate", "dense_head.mlp", "dense_head.gate")


def merged_labels(base: tuple[str, ...], data: tuple[str, ...], mode: str) -> tuple[str, ...]:
    if mode == "replace":
        labels = tuple(data)
    elif mode == "keep":
        labels = tuple(dict.fromkeys([*base, *data]))
    else:
        raise InputError(f"--labels must be keep or replace, not {mode!r}")
    events = tuple(n for n in labels if n != BACKGROUND)
    return events + ((BACKGROUND,) if BACKGROUND in labels else ())


def from_base(base_path, data_labels: tuple[str, ...], mode: str = "keep", finetune_encoders: bool = False):
    """(config, init state, recipe) of a fine-tune from ``base_path`` on data with ``data_labels``."""
    from .checkpoint import read_checkpoint
    state, base_cfg, _ = read_checkpoint(base_path)
    labels = merged_labels(base_cfg.labels, data_labels, mode)
    new = [i for i, n in enumerate(labels) if n not in base_cfg.labels]
    if mode == "keep" and not new:
        log.info("the data has no label the base model lacks: fine-tuning its %d labels' rows", len(labels))
    cfg = base_cfg.replace(labels=labels)
    init = {}
    for k, v in state.items():
        layer = k.rsplit(".", 1)[0]
        if layer in CLASS_LAYERS:
            if mode == "replace":
                continue                        # new class rows, fresh
            # a new label starts as the base model's "nothing of interest" (its background row, where it
            # has one): it rises where its clips are, and stays as low as background on the base labels'
            # clips, which the few clips never show it (from zero, 1 clip + 1 background made it win 97%
            # of the base labels' test clips)
            start = base_cfg.labels.index(BACKGROUND) if BACKGROUND in base_cfg.labels else None
            rows = torch.zeros((len(labels), *v.shape[1:]), dtype=v.dtype)
            for i, n in enumerate(labels):
                if n in base_cfg.labels:
                    rows[i] = v[base_cfg.labels.index(n)]
                elif start is not None:
                    rows[i] = v[start]
            init[k] = rows
        else:
            init[k] = v
    frozen = ("local",) if finetune_encoders else FEWSHOT.frozen
    if mode == "keep":
        frozen = tuple(dict.fromkeys(BASE_FROZEN if not finetune_encoders else
                                     tuple(n for n in BASE_FROZEN if n not in ("glance", "audio")) + ("local",)))
        trainable_rows = tuple(new) or tuple(range(len(labels)))
    else:
        trainable_rows = ()
    recipe = dataclasses.replace(FEWSHOT, frozen=frozen, train_rows=trainable_rows)
    return cfg, init, recipe


def mask_rows(model, rows: tuple[int, ...]):
    """Only ``rows`` of the class layers learn: the other rows' gradients are zeroed (once per parameter)."""
    if not rows:
        return
    for name in CLASS_LAYERS:
        for p in model.get_submodule(name).parameters():
            if getattr(p, "_row_mask", None) is None:
                mask = torch.zeros(p.shape[0], *([1] * (p.dim() - 1)))
                mask[list(rows)] = 1.0
                p._row_mask = mask
                p.register_hook(lambda g, m=mask: g * m.to(g.device, g.dtype))
