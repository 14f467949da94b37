"""``serve --check``: what start would refuse, found without starting (no model session, no port,
no output opened, nothing left behind): each problem one line naming the key.

    check_config(cfg)    # ConfigError for the first problem; the bundle's labels when all is well
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import AvgnError, ConfigError, InputError


def check_labels(where: str, detect, labels, tuned: dict | None = None) -> None:
    """A detect section (over the bundle's ``tuned`` event defaults) against the model's labels
    (unknown filter labels, an offset above an onset threshold): ConfigError naming the key."""
    bad = [k for k in detect.filters if k not in labels]
    if bad:
        raise ConfigError(f"{where}.filters.{bad[0]}: not a label of this model", hint="labels: " + ", ".join(labels))
    try:
        detect.settings(tuned).check(labels)
    except InputError as exc:
        raise ConfigError(f"{where}: {exc}", hint=exc.hint) from None


def _writable(key: str, path: Path, folder: bool) -> None:
    """Can the service create (or write) ``path``? The nearest existing folder above it decides."""
    p = Path(path)
    if p.exists():
        if folder != p.is_dir() or not os.access(p, os.W_OK):
            raise ConfigError(f"{key}: {p} is not a writable {'folder' if folder else 'file'}")
        return
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:                                          # a real probe (root passes os.access, /proc refuses mkdir)
        os.rmdir(tempfile.mkdtemp(prefix=".avgn-check-", dir=parent))
    except OSError as exc:
        raise ConfigError(f"{key}: cannot create {p} ({exc.strerror or exc})") from None


def check_config(cfg, source: str = "config") -> tuple:
    """Everything start checks before it serves, but the port and the sources' reachability."""
    from ..bundle import load_bundle
    if cfg.api.port is None:
        raise ConfigError(f"{source}: api.port: required (or pass --port)")
    try:
        bundle = load_bundle(cfg.model.bundle)
    except AvgnError as exc:
        raise ConfigError(f"{source}: model.bundle: {exc}", hint=exc.hint) from None
    labels, tuned = bundle.labels, bundle.event_defaults
    check_labels("detect", cfg.detect, labels, tuned)
    for name, cam in cfg.cameras.items():
        check_labels(f"cameras.{name}.detect", cam.detect, labels, tuned)
        jl = cam.jsonl.file_for(name)
        if jl is not None:
            _writable(f"cameras.{name}.jsonl.path", jl, folder=False)
        if cam.record is not None and cam.record.enabled:
            _writable(f"cameras.{name}.record.path", Path(cam.record.path.replace("{camera}", name)), folder=True)
    return labels
