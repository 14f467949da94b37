"""Random-weight bundles of any preset, made on the fly for ``avgn-edge bench --preset NAME``.

Speed only: the weights are PyTorch's initialisation (seeded), never trained, so the bench
reports no accuracy for them. The bundle is exported exactly as a trained one (same exporter,
checks and parity test, on 2 clips), with its INT8 variants calibrated on synthetic clips (for
the ranges, not for accuracy). Kept in ``$XDG_CACHE_HOME/avgn-edge/bench/`` under a hash of the
preset and the avgn-edge version, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from ..cachedir import user_cache
from ..version import __version__
from ..config import get_preset

log = logging.getLogger(__name__)
CALIB_CLIPS = 4
SEED = 0
RECIPE = 1              # bump when the way these bundles are made changes: cached ones are then remade


def synth_uri(cfg, seed: int, clips: int) -> str:
    """Synthetic clips for any model; ``geometry=any`` where the benchmark's own geometry does not fit."""
    from ..data.synth import GLANCE_FACTOR
    fits = cfg.frame_size == GLANCE_FACTOR * cfg.glance_size
    return f"synth:seed={seed},clips={clips}" + ("" if fits else ",geometry=any")


def drive_config(cfg):
    """The config synthetic clips are made for: ``cfg`` itself, or (a model of other labels, e.g. home)
    the same shapes with the benchmark's labels - for timing, where a clip's label plays no part."""
    from ..data.synth import CLASSES, LABELS
    return cfg if all(n in cfg.labels for n in LABELS) else cfg.replace(labels=CLASSES)


def bench_config(preset: str):
    """The preset, its labels led by the synthetic benchmark's (same class count, same shapes), so
    synthetic clips can drive it."""
    from ..data.synth import LABELS
    cfg = get_preset(preset)                        # InputError for an unknown preset
    extra = [l for l in cfg.labels if l not in LABELS]
    return cfg.replace(labels=tuple(LABELS) + tuple(extra[:max(0, cfg.num_classes - len(LABELS))]))


def cache_root() -> Path:
    return user_cache("bench")


def random_bundle(preset: str, root: Path | None = None) -> tuple[Path, Path]:
    """(bundle folder, checkpoint) of ``preset`` with random weights, made once and then reused."""
    cfg = bench_config(preset)
    key = hashlib.sha256(f"{cfg.to_json()}|{__version__}|{SEED}|{CALIB_CLIPS}|{RECIPE}".encode()).hexdigest()[:12]
    folder = (root or cache_root()) / f"{preset}-{key}"
    ckpt, bundle = folder / "random.safetensors", folder / "bundle"
    if (folder / "done").is_file():
        return bundle, ckpt
    import torch

    from ..export.onnx_export import export_bundle
    from ..model import build_model
    from ..precision.quantize import add_variant
    from ..train.checkpoint import save_checkpoint
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log.info("random-weight %s bundle in %s (once) ...", preset, folder)
    torch.manual_seed(SEED)
    save_checkpoint(ckpt, build_model(cfg).eval(), {"random_weights": True, "preset": preset, "seed": SEED,
                                                     "note": "for speed measurements only: never trained"})
    export_bundle(ckpt, bundle, parity_data=synth_uri(cfg, 1000, 2))
    # calibrated for the ranges only: these weights have no accuracy to keep
    add_variant(bundle, "int8", calib=synth_uri(cfg, 2000, CALIB_CLIPS), eval_data=synth_uri(cfg, 1000, 2),
                progress=False)
    (folder / "done").write_text("ok\n")
    return bundle, ckpt
