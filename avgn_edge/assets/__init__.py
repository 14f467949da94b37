"""Files shipped with the package: the trained ``synth`` model and its bundle."""

from __future__ import annotations

from pathlib import Path

from ..errors import BundleError

ROOT = Path(__file__).resolve().parent


def shipped_checkpoint() -> Path:
    p = ROOT / "synth" / "model.safetensors"
    if not p.is_file():
        raise BundleError("the shipped synth checkpoint is missing from this installation",
                          hint="reinstall avgn-edge, or train one: see README 'Reproduce the synth model'")
    return p


def shipped_bundle() -> Path:
    p = ROOT / "synth" / "bundle"
    if not (p / "manifest.json").is_file():
        raise BundleError("the shipped synth bundle is missing from this installation",
                          hint="reinstall avgn-edge, or export one: avgn-edge export synth --out BUNDLE")
    return p
