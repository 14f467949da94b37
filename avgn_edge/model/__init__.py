"""AVGN in PyTorch (needs the ``train`` extra). One module per component."""

from .avgn import AVGN, build_model

__all__ = ["AVGN", "build_model"]
