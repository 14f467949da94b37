"""The engine cache, TensorRT-free: key, file names, JSON sidecars, atomic writes, cache folders.

A TensorRT engine is valid only for the exact TensorRT build, GPU and OS it was built on, and
for the exact ONNX and builder settings. Each ``<stage>.<precision>.sm87.trt10.3.0.engine``
therefore has a ``<same>.json`` sidecar holding its ``EngineKey``; ``check_cached`` compares it
with the key wanted now and names the first field that differs. Engines stay plain TensorRT
plans (no prepended header), so trtexec, Polygraphy and DeepStream can load them too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..cachedir import user_cache
from ..deps import EMULATED_GPU_NAME
from ..errors import EngineError
from ..version import __version__

SIDECAR_FORMAT = "avgn-edge-engine/1"
RECIPE_REVISION = 2      # bump when build.py changes how engines are built (flags, profiles, ...); 2: batch profiles
RECIPE = f"avgn-edge {__version__} r{RECIPE_REVISION}"
UNKNOWN = "unknown"
DEFAULT_DIR = Path("engines")

IOSpec = tuple[tuple[str, tuple[int, ...], str], ...]    # (name, shape, dtype) per tensor


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; any difference means rebuild. Field order = report order."""
    stage: str
    precision: str
    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str          # "8.7"
    cuda_driver_version: str         # "12.6" (what cuDriverGetVersion reports)
    l4t_release: str                 # "R36.4.3" on Jetson, "" elsewhere
    inputs: IOSpec
    outputs: IOSpec
    batch: tuple[int, int, int]      # the optimization profile of the leading batch: (min, opt, max)
    workspace_mib: int
    builder_optimization_level: int
    recipe: str = RECIPE

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("inputs", "outputs"):
            d[k] = [[n, list(s), t] for n, s, t in getattr(self, k)]
        d["batch"] = list(self.batch)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EngineKey":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("inputs", "outputs"):
            kw[k] = tuple((n, tuple(s), t) for n, s, t in kw.get(k, ()))
        kw["batch"] = tuple(kw.get("batch", ()))
        return cls(**kw)


def io_spec(tensors) -> IOSpec:
    """From bundle TensorSpecs (name, shape, dtype)."""
    return tuple((t.name, tuple(t.shape), t.dtype) for t in tensors)


def engine_filename(key: EngineKey) -> str:
    """``decide.fp16.sm87.trt10.3.0.engine``; ``...trt10.3.0.emulated.engine`` from the emulated GPU, which
    must never take the place of a real device's engine in a shared folder."""
    sm = "sm-unknown" if key.compute_capability == UNKNOWN else "sm" + key.compute_capability.replace(".", "")
    trt = "trt-unknown" if key.trt_version == UNKNOWN else "trt" + key.trt_version
    return f"{key.stage}.{key.precision}.{sm}.{trt}{'.emulated' if key.gpu_name == EMULATED_GPU_NAME else ''}.engine"


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name[: -len(".engine")] + ".json" if p.name.endswith(".engine") else p.name + ".json")


def timing_cache_path(cache_dir: str | os.PathLike, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """One timing cache per TensorRT version and GPU (caches are device- and version-specific)."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-").lower() or "gpu"
    return Path(cache_dir) / "timing" / f"trt{trt_version}.sm{compute_capability.replace('.', '')}.{gpu}.cache"


def read_sidecar(engine_path: str | os.PathLike) -> dict:
    """The sidecar as a dict; raises ValueError with a short reason when missing or malformed."""
    path = sidecar_path(engine_path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("key"), dict):
        raise ValueError(f"not an {SIDECAR_FORMAT} sidecar")
    return data


def check_cached(engine_path: str | os.PathLike, key: EngineKey) -> tuple[bool, str]:
    """(True, "cached") if the engine can be reused for ``key``, else (False, first reason)."""
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        return False, "no engine"
    try:
        data = read_sidecar(engine_path)
    except ValueError as exc:
        return False, f"sidecar unreadable: {exc}"
    have, want = data["key"], key.to_dict()
    for field in want:                       # dataclass order: identity first, then build settings
        if have.get(field) != want[field]:
            return False, f"{field}: {_short(have.get(field, 'missing'))} -> {_short(want[field])}"
    size = engine_path.stat().st_size
    if data.get("engine_size") != size:
        return False, f"engine file size differs (sidecar {data.get('engine_size')}, file {size})"
    return True, "cached"


def _short(v) -> str:
    s = str(v)
    return s[:12] + "…" if re.fullmatch(r"[0-9a-f]{64}", s) else s


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temp file in the same folder + fsync + os.replace: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:                                     # make the rename itself durable (best effort; not on Windows)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def store_engine(engine_path: str | os.PathLike, engine: bytes, key: EngineKey, **extra) -> Path:
    """Engine first, sidecar second: a crash in between leaves an engine without a sidecar
    (rebuilt next time), never a sidecar vouching for a missing or half-written engine."""
    engine_path = Path(engine_path)
    try:
        sidecar_path(engine_path).unlink()   # an old sidecar must not outlive the engine it described
    except FileNotFoundError:
        pass
    write_atomic(engine_path, engine)
    doc = {"format": SIDECAR_FORMAT, "key": key.to_dict(), "engine_size": len(engine), **extra}
    write_atomic(sidecar_path(engine_path), (json.dumps(doc, indent=1) + "\n").encode())
    return engine_path


def xdg_cache_dir() -> Path:
    return user_cache("engines")


def _writable(folder: Path) -> bool:
    p = folder
    while not p.exists():                    # a folder we would create: its first existing parent decides
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


def resolve_cache_dir(requested: str | os.PathLike | None = None, log=print) -> Path:
    """The engine folder: ``requested`` if given (must be writable), else engines/ with an XDG fallback."""
    if requested is not None:
        folder = Path(requested).expanduser()
        if not _writable(folder):
            raise EngineError(f"cannot write engines to {folder} (permission denied)",
                              hint="choose another folder with --out, or fix its permissions")
        return folder
    if _writable(DEFAULT_DIR):
        return DEFAULT_DIR
    fallback = xdg_cache_dir()
    log(f"{DEFAULT_DIR}/ is not writable here; using {fallback} for engines")
    return fallback


def read_l4t_release(path: str = "/etc/nv_tegra_release") -> str:
    """'R36.4.3' from Jetson's release file ('# R36 (release), REVISION: 4.3, ...'); '' elsewhere."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else ""
