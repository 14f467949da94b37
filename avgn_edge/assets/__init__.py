"""Files shipped with the package: the trained models (``synth``, ``home``) and their bundles."""

from __future__ import annotations

from pathlib import Path

from ..errors import BundleError

ROOT = Path(__file__).resolve().parent
SHIPPED = ("synth", "home")


def is_shipped(name) -> bool:
    return str(name) in SHIPPED


def shipped_checkpoint(name: str = "synth") -> Path:
    p = ROOT / name / "model.safetensors"
    if not p.is_file():
        raise BundleError(f"the shipped {name} checkpoint is missing from this installation",
                          hint="reinstall avgn-edge, or train one: see README 'Reproduce the synth model'")
    return p


def shipped_bundle(name: str = "synth") -> Path:
    p = ROOT / name / "bundle"
    if not (p / "manifest.json").is_file():
        raise BundleError(f"the shipped {name} bundle is missing from this installation",
                          hint=f"reinstall avgn-edge, or export one: avgn-edge export {name} --out BUNDLE")
    return p
