"""Build crop_resize.cu for the CPU with g++ and run it through ctypes.

Not a runtime path (the CPU runtime uses reference.py): it lets GPU-less tests check the
kernel source's own arithmetic against the reference. The same .cu is compiled as C++
with host_driver.h force-included, which emulates the CUDA grid serially.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependency
from .compile import SOURCE, default_cache_dir
from .launch import BLOCK, grid, make_args

DRIVER = Path(__file__).with_name("host_driver.h")
FLAGS = ("-x", "c++", "-std=c++17", "-O2", "-shared", "-fPIC")
_libs: dict[Path, ctypes.CDLL] = {}


def build_host_library(cache_dir: str | Path | None = None, compiler: str | None = None) -> Path:
    """Compile (or reuse from the cache) the host .so; returns its path."""
    cxx = compiler or os.environ.get("CXX") or "g++"
    exe = shutil.which(cxx)
    if exe is None:
        raise MissingDependency(f"C++ compiler {cxx!r} not found (needed only for the host build of the kernel)",
                                hint="apt install g++ (GCC >= 12 for _Float16) or set CXX")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), DRIVER.read_bytes(), version.encode(),
                                     " ".join(FLAGS).encode(), platform.machine().encode()])).hexdigest()[:32]
    lib = Path(cache_dir or default_cache_dir()) / f"crop_resize-host-{key}.so"
    if lib.is_file():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lib.parent, prefix=lib.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        cmd = [exe, *FLAGS, "-include", str(DRIVER), str(SOURCE), "-o", tmp]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"host build of {SOURCE.name} failed:\n{' '.join(cmd)}\n{res.stderr}")
        os.replace(tmp, lib)   # atomic: concurrent builders each write their own temp file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def load_host_library(cache_dir: str | Path | None = None) -> ctypes.CDLL:
    path = build_host_library(cache_dir)
    if path not in _libs:
        lib = ctypes.CDLL(str(path))
        for name in ("host_crop_resize_f32", "host_crop_resize_f16"):
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
            fn.restype = None
        _libs[path] = lib
    return _libs[path]


def crop_resize_host(frames: np.ndarray, indices, centres, box_frac: float, out_h: int, out_w: int, mean, std,
                     start: int = 0, swap_rb: bool = False, whole_frame: bool = False, fp16: bool = False,
                     cache_dir: str | Path | None = None) -> np.ndarray:
    """Run the kernel on the CPU: same semantics as reference.crop_patches (whole_frame=False)
    and reference.glance_views (whole_frame=True; centres ignored; indices None = the ring
    from ``start``). frames: uint8 [T, H, W, 3] ring. Returns [k, 3, out_h, out_w]."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be [T, H, W, 3] uint8, got {frames.shape}")
    t, h, w = frames.shape[:3]
    idx = None if indices is None else np.ascontiguousarray(indices, dtype=np.int32).reshape(-1)
    k = len(idx) if idx is not None else t
    ctr = None
    if not whole_frame:
        if idx is None:
            raise InputError("patches need snippet indices")
        ctr = np.ascontiguousarray(centres, dtype=np.float32).reshape(k, 2)
    out = np.empty((k, 3, out_h, out_w), np.float16 if fp16 else np.float32)
    args = make_args(frames.ctypes.data, (t, h, w), out.ctypes.data, k, out_h, out_w, mean, std,
                     indices=0 if idx is None else idx.ctypes.data, centres=0 if ctr is None else ctr.ctypes.data,
                     box_frac=box_frac, start=start, swap_rb=swap_rb)
    lib = load_host_library(cache_dir)
    fn = lib.host_crop_resize_f16 if fp16 else lib.host_crop_resize_f32
    fn(ctypes.addressof(args), *grid(args, BLOCK), BLOCK)   # the arrays above stay alive across the call
    return out
