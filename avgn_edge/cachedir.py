"""Where avgn-edge keeps what it makes once and reuses: ``$XDG_CACHE_HOME/avgn-edge`` (default
``~/.cache/avgn-edge``): compiled kernels, TensorRT engines, tuning plans, benchmark bundles."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(*parts: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "avgn-edge", *parts)
