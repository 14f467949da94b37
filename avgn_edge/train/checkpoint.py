"""Checkpoints: safetensors weights + JSON config and provenance. No pickle anywhere.

    save_checkpoint(path, model, provenance={...}); model, meta = load_checkpoint(path)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import ModelConfig
from ..deps import require
from ..errors import BundleError

FORMAT = "avgn-edge-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, model, provenance: dict | None = None) -> Path:
    st = require("safetensors.torch")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": model.cfg.to_json(), "provenance": json.dumps(provenance or {})}
    tmp = path.with_name(path.name + ".tmp")
    st.save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, ModelConfig, dict]:
    """(state dict, config, provenance) from a checkpoint file, validated."""
    st = require("safetensors.torch")
    path = resolve_checkpoint(path)
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = st.load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad header
        raise BundleError(f"{path} is not a readable avgn-edge checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise BundleError(f"{path} is not an avgn-edge checkpoint (format {meta.get('format')!r})")
    cfg = ModelConfig.from_dict(json.loads(meta["config"]))
    return state, cfg, json.loads(meta.get("provenance", "{}"))


def load_checkpoint(path: str | os.PathLike):
    """(AVGN model in eval mode, provenance)."""
    from ..model import build_model
    state, cfg, prov = read_checkpoint(path)
    model = build_model(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BundleError(f"checkpoint {path} does not match the {cfg.name} model: "
                          f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    return model.eval(), prov


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A path, or the name ``synth`` for the checkpoint shipped with the package. A run folder
    means its best checkpoint when validation chose one, else its last."""
    from ..assets import is_shipped, shipped_checkpoint
    if is_shipped(path):
        return shipped_checkpoint(str(path))
    p = Path(path)
    if p.is_dir():
        p = p / "best.safetensors" if (p / "best.safetensors").is_file() else p / "model.safetensors"
    if not p.is_file():
        raise BundleError(f"checkpoint not found: {path}",
                          hint="pass a .safetensors file written by `avgn-edge train`, or `synth`")
    return p
