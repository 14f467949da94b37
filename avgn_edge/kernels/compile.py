"""Compile crop_resize.cu to a CUBIN with NVRTC (cuda.bindings.nvrtc), with a disk cache.

CUBIN, not PTX: PTX from an NVRTC newer than the driver will not JIT (JetPack 6 ships
CUDA 12.6), and NVRTC -> CUBIN works without a GPU or driver, so CI can compile-check.
cuda-python is imported inside the functions: the package imports without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from ..cachedir import user_cache
from ..deps import require
from ..errors import MissingDependency

SOURCE = Path(__file__).with_name("crop_resize.cu")
KERNEL_NAMES = ("crop_resize_f32", "crop_resize_f16")   # extern "C" entry points in SOURCE
OPTIONS = ("-std=c++17",)   # no --use_fast_math: it would change the division results
_HEADER_HINT = ("on Jetson use the JetPack's CUDA toolkit (/usr/local/cuda); elsewhere pip install "
                "'avgn-edge[cuda12]' or 'avgn-edge[cuda13]' (whichever matches the driver), or set CUDA_HOME "
                "to a CUDA install with include/cuda_fp16.h")

# Number of actual NVRTC compilations in this process (cache hits do not count).
compile_count = 0


class KernelCompileError(RuntimeError):
    """NVRTC rejected the source or an NVRTC call failed (a bug, not a user error)."""


def _nvrtc():
    """The cuda.bindings.nvrtc module, with libnvrtc loadable."""
    nvrtc = require("cuda.bindings.nvrtc")
    try:
        nvrtc.nvrtcVersion()
    except Exception as exc:  # libnvrtc.so missing: cuda-pathfinder raises DynamicLibNotFoundError
        raise MissingDependency(f"NVRTC cannot be loaded ({exc})",
                                hint="on Jetson the JetPack's libnvrtc is used (apt install cuda-nvrtc-12-6 if "
                                     "missing); elsewhere pip install 'avgn-edge[cuda12]' or 'avgn-edge[cuda13]', "
                                     "matching the driver's CUDA major") from exc
    return nvrtc


def _check(result, prog=None):
    """Unpack an NVRTC ``(err, *values)`` tuple; raise with the program log on failure."""
    nvrtc = require("cuda.bindings.nvrtc")
    err, *values = result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        msg = nvrtc.nvrtcGetErrorString(err)[1].decode()
        if prog is not None:
            msg += "\n" + program_log(prog)
        raise KernelCompileError(f"NVRTC: {msg}")
    return values[0] if len(values) == 1 else tuple(values) or None


def program_log(prog) -> str:
    nvrtc = require("cuda.bindings.nvrtc")
    size = _check(nvrtc.nvrtcGetProgramLogSize(prog))
    log = bytearray(size)
    _check(nvrtc.nvrtcGetProgramLog(prog, log))
    return log.rstrip(b"\0").decode(errors="replace")


def nvrtc_version() -> tuple[int, int]:
    """(major, minor) of the NVRTC library cuda.bindings loads."""
    nvrtc = _nvrtc()
    return tuple(_check(nvrtc.nvrtcVersion()))


def cuda_include_dir() -> str:
    """A directory holding cuda_fp16.h (and what it includes).

    Order: $CUDA_HOME / $CUDA_PATH, cuda.pathfinder's search (pip wheels, conda, system),
    the pip wheels' nvidia/cu13/include or nvidia/cuda_runtime/include, /usr/local/cuda.
    """
    candidates = [os.path.join(os.environ[v], "include") for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    try:
        from cuda.pathfinder import find_nvidia_header_directory
        candidates.append(find_nvidia_header_directory("cudart"))
    except Exception:  # pathfinder absent or too old: fall back to the known layouts
        pass
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidates += [os.path.join(root, "cu13", "include"), os.path.join(root, "cuda_runtime", "include")]
    candidates.append("/usr/local/cuda/include")
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, "cuda_fp16.h")):
            return d
    raise MissingDependency("the CUDA headers (cuda_fp16.h) needed to compile the crop kernel were not found",
                            hint=_HEADER_HINT)


def default_cache_dir() -> Path:
    return user_cache("kernels")


def normalize_arch(arch) -> str:
    """"87", "sm_87", 87 or (8, 7) -> "87"."""
    if isinstance(arch, tuple):
        return f"{arch[0]}{arch[1]}"
    s = str(arch).lower().removeprefix("sm_").removeprefix("compute_")
    if not s.isdigit():
        raise ValueError(f"bad GPU architecture {arch!r}: expected e.g. '87' or 'sm_87'")
    return s


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory + os.replace (safe with concurrent writers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def compile_cubin(arch, source: str | Path | None = None, *, cache_dir: str | Path | None = None,
                  use_cache: bool = True, options: tuple[str, ...] = ()) -> bytes:
    """CUBIN bytes of ``source`` (default crop_resize.cu) for ``sm_<arch>``.

    Cached in ``cache_dir`` (default $XDG_CACHE_HOME/avgn-edge/kernels) under the sha256 of
    source + options + NVRTC version + arch.
    """
    global compile_count
    arch = normalize_arch(arch)
    path = Path(source) if source is not None else SOURCE
    src = path.read_bytes()
    nvrtc = _nvrtc()
    opts = [f"--gpu-architecture=sm_{arch}", *OPTIONS, *options, f"-I{cuda_include_dir()}"]
    key = hashlib.sha256(b"\0".join([src, *(o.encode() for o in opts),
                                     repr(nvrtc_version()).encode()])).hexdigest()[:32]
    cached = Path(cache_dir or default_cache_dir()) / f"{path.stem}-sm_{arch}-{key}.cubin"
    if use_cache and cached.is_file():
        return cached.read_bytes()

    prog = _check(nvrtc.nvrtcCreateProgram(src, path.name.encode(), 0, [], []))
    try:
        _check(nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts]), prog)
        compile_count += 1
        cubin = bytearray(_check(nvrtc.nvrtcGetCUBINSize(prog)))
        _check(nvrtc.nvrtcGetCUBIN(prog, cubin))
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    cubin = bytes(cubin)
    if use_cache:
        atomic_write(cached, cubin)
    return cubin
