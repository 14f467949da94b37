"""Launch the crop kernel on the GPU (cuda.bindings.driver), sharing TensorRT's context.

The kernel takes one by-value struct, ``CropArgs`` (mirrors crop_resize.cu): cuda-python
packs it from ``kernelParams=((args,), (None,))`` (a ctypes.Structure with type None is
passed by address). All buffers are device pointers (ints); the centres are read from
device memory because they are another engine's output.
"""

from __future__ import annotations

import ctypes

from ..deps import require
from ..errors import InputError
from .compile import compile_cubin
from .cuda_driver import check

BLOCK = 128   # threads per block; one thread per output pixel (3 channels)


class CropArgs(ctypes.Structure):
    """ctypes mirror of ``struct CropArgs`` in crop_resize.cu (96 bytes; same field order)."""

    _fields_ = [("frames", ctypes.c_void_p), ("indices", ctypes.c_void_p), ("centres", ctypes.c_void_p),
                ("out", ctypes.c_void_p), ("box_frac", ctypes.c_double),
                ("T", ctypes.c_int), ("H", ctypes.c_int), ("W", ctypes.c_int), ("start", ctypes.c_int),
                ("k", ctypes.c_int), ("out_h", ctypes.c_int), ("out_w", ctypes.c_int),
                ("mean", ctypes.c_float * 3), ("std", ctypes.c_float * 3),
                ("swap_rb", ctypes.c_int)]

    def touched(self, fp16: bool) -> dict[str, int]:
        """Bytes behind each pointer field that one launch may read or write."""
        out = {"frames": self.T * self.H * self.W * 3, "out": self.k * 3 * self.out_h * self.out_w * (2 if fp16 else 4)}
        if self.indices:
            out["indices"] = self.k * 4
        if self.centres:
            out["centres"] = self.k * 8
        return out


# kernel name -> (its by-value argument struct, fp16 output); the emulated GPU checks launches with it
KERNEL_ARGS = {"crop_resize_f32": (CropArgs, False), "crop_resize_f16": (CropArgs, True)}


def make_args(frames: int, ring: tuple[int, int, int], out: int, k: int, out_h: int, out_w: int, mean, std, *,
              indices: int = 0, centres: int = 0, box_frac: float = 0.0, start: int = 0,
              swap_rb: bool = False) -> CropArgs:
    """Pointers are addresses (device for the GPU, host for host.py); 0 means nullptr.

    ``ring`` = (T, H, W) of the uint8 [T, H, W, 3] frames. ``indices`` 0: frames start..start+k-1.
    ``centres`` 0: whole frame (glance view), ``box_frac`` ignored.
    """
    t, h, w = (int(v) for v in ring)
    if min(t, h, w, k, out_h, out_w) < 1 or k > 65535:
        raise InputError(f"bad crop shape: ring {ring}, k {k}, output {out_h}x{out_w}")
    if centres and not 0.0 < box_frac <= 1.0:
        raise InputError(f"box_frac must be in (0, 1], got {box_frac}")
    return CropArgs(frames or None, indices or None, centres or None, out or None, float(box_frac), t, h, w,
                    int(start) % t, k, out_h, out_w, (ctypes.c_float * 3)(*map(float, mean)),
                    (ctypes.c_float * 3)(*map(float, std)), int(bool(swap_rb)))


def grid(args: CropArgs, block: int = BLOCK) -> tuple[int, int]:
    """(grid_x, grid_y): pixels of one output image over x, snippets over y."""
    return (args.out_h * args.out_w + block - 1) // block, args.k


class CropKernel:
    """The crop kernel loaded into the *current* context (e.g. the primary context, made
    current by the TensorRT runtime or ``cuDevicePrimaryCtxRetain`` + ``cuCtxSetCurrent``).

    ``cubin`` defaults to crop_resize.cu compiled (and cached) for the current device's
    compute capability.
    """

    def __init__(self, cubin: bytes | None = None, *, cache_dir=None, block: int = BLOCK):
        driver = require("cuda.bindings.driver")
        dev = check(driver.cuCtxGetDevice())
        major = check(driver.cuDeviceGetAttribute(
            driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev))
        minor = check(driver.cuDeviceGetAttribute(
            driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev))
        self.arch = f"{major}{minor}"
        self.block = block
        if cubin is None:
            cubin = compile_cubin(self.arch, cache_dir=cache_dir)
        self.module = check(driver.cuModuleLoadData(cubin))
        self.functions = {fp16: check(driver.cuModuleGetFunction(self.module, name))
                          for fp16, name in ((False, b"crop_resize_f32"), (True, b"crop_resize_f16"))}

    def launch(self, args: CropArgs, fp16: bool = False, stream=0) -> None:
        """Enqueue one launch on ``stream`` (a CUstream or its integer handle; 0 = legacy default)."""
        driver = require("cuda.bindings.driver")
        gx, gy = grid(args, self.block)
        hstream = stream if isinstance(stream, driver.CUstream) else driver.CUstream(int(stream))
        check(driver.cuLaunchKernel(self.functions[bool(fp16)], gx, gy, 1, self.block, 1, 1, 0, hstream,
                                     ((args,), (None,)), 0))

    def patches(self, frames: int, ring: tuple[int, int, int], indices: int, centres: int, k: int, box_frac: float,
                out: int, size: int, mean, std, *, start: int = 0, swap_rb: bool = False, fp16: bool = False,
                stream=0) -> None:
        """[k, 3, size, size] patches around ``centres`` [k, 2] of frames slot (start + indices[i]) % T."""
        if not centres:
            raise InputError("patches need a centres pointer (use glance() for the whole frame)")
        args = make_args(frames, ring, out, k, size, size, mean, std, indices=indices, centres=centres,
                         box_frac=box_frac, start=start, swap_rb=swap_rb)
        self.launch(args, fp16, stream)

    def glance(self, frames: int, ring: tuple[int, int, int], out: int, size: int, mean, std, *,
               count: int | None = None, indices: int = 0, start: int = 0, swap_rb: bool = False,
               fp16: bool = False, stream=0) -> None:
        """[count, 3, size, size] whole-frame views (count defaults to T: the whole ring from start)."""
        args = make_args(frames, ring, out, count or int(ring[0]), size, size, mean, std, indices=indices,
                         start=start, swap_rb=swap_rb)
        self.launch(args, fp16, stream)

    def close(self) -> None:
        if getattr(self, "module", None) is not None:
            driver = require("cuda.bindings.driver")
            check(driver.cuModuleUnload(self.module))
            self.module = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
