"""cuda.bindings.driver helpers shared by the crop kernel, the device rings and the TensorRT runtime.

* ``check`` unpacks a driver ``(CUresult, *values)`` tuple and raises ``CudaDriverError`` naming the
  error (a ``EngineError``, so the CLI reports it in one line).
* ``PrimaryContext`` is device 0's primary context, the one TensorRT and cudart use. The driver
  binds a context to each CPU thread separately, and a Recognizer is often built on one thread
  and fed on another (the live loop's inference thread), so every entry point that may run on
  another thread makes the context current for its duration: ``@on_device``.
* ``DeviceMemory`` owns device buffers and pinned host buffers and frees them together.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

import numpy as np

from ..deps import require
from ..errors import CudaDriverError, EngineError

ALIGN = 256          # TensorRT's tensor address alignment; cuMemAlloc returns at least this


def driver():
    return require("cuda.bindings.driver")


def check(result):
    """The values of a driver call's ``(err, *values)`` tuple; CudaDriverError unless err is CUDA_SUCCESS."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise CudaDriverError(f"CUDA error {name} ({int(err)})", code=name)
    return values[0] if len(values) == 1 else tuple(values) or None


def clear_runtime_error() -> None:
    """``cudaGetLastError``: clear cudart's per-thread error, which TensorRT's cudart calls leave set after
    a failed stream capture (trtexec does this after ``endCaptureOnError``)."""
    try:
        from cuda.bindings.runtime import cudaGetLastError
    except Exception:                          # no cudart in these bindings: nothing to clear
        return
    cudaGetLastError()


class PrimaryContext:
    """Device 0's primary context, retained until ``release``."""

    def __init__(self, ordinal: int = 0):
        d = self.driver = driver()
        check(d.cuInit(0))
        self.device = check(d.cuDeviceGet(ordinal))
        self.handle = check(d.cuDevicePrimaryCtxRetain(self.device))

    @contextlib.contextmanager
    def current(self):
        """This context current on the calling thread for the block (pushed, then popped)."""
        if self.handle is None:
            raise EngineError("the CUDA context was released (the backend is closed)")
        check(self.driver.cuCtxPushCurrent(self.handle))
        try:
            yield self
        finally:
            check(self.driver.cuCtxPopCurrent())

    def attribute(self, name: str) -> int:
        return int(check(self.driver.cuDeviceGetAttribute(getattr(self.driver.CUdevice_attribute, name), self.device)))

    def release(self) -> None:
        if self.handle is not None:
            self.handle = None
            check(self.driver.cuDevicePrimaryCtxRelease(self.device))


def on_device(method):
    """Run the method with ``self.cuda`` (a PrimaryContext) current on the calling thread."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.cuda is None:
            raise EngineError(f"{type(self).__name__} is closed")
        with self.cuda.current():
            return method(self, *args, **kwargs)
    return wrapper


class DeviceMemory:
    """Device buffers and pinned host buffers (NumPy views), all freed by ``close``."""

    def __init__(self):
        self.driver = driver()
        self.device: list[int] = []
        self.host: list[int] = []

    def alloc(self, nbytes: int) -> int:
        ptr = int(check(self.driver.cuMemAlloc(max(int(nbytes), 1))))
        if ptr % ALIGN:
            raise CudaDriverError(f"cuMemAlloc returned {ptr:#x}, not {ALIGN}-byte aligned")
        self.device.append(ptr)
        return ptr

    def pinned(self, shape, dtype) -> np.ndarray:
        """A NumPy array in pinned (page-locked) memory: asynchronous copies from it are truly async."""
        count = int(np.prod(shape))
        nbytes = max(count * np.dtype(dtype).itemsize, 1)
        ptr = int(check(self.driver.cuMemHostAlloc(nbytes, 0)))
        self.host.append(ptr)
        raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def free(self, ptr: int) -> None:
        """Release one buffer early (e.g. the frame ring when the camera's frame size changes)."""
        if ptr in self.device:
            self.device.remove(ptr)
            check(self.driver.cuMemFree(ptr))
        elif ptr in self.host:
            self.host.remove(ptr)
            check(self.driver.cuMemFreeHost(ptr))

    def close(self) -> None:
        """Free everything (the caller drops its pinned views first: they would dangle)."""
        for ptr in self.device:
            self.driver.cuMemFree(ptr)
        for ptr in self.host:
            self.driver.cuMemFreeHost(ptr)
        self.device, self.host = [], []
