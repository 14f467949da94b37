"""How an emulated driver call looks from Python: real types in, ``(CUresult, ...)`` tuples out.

The enums and handle classes are the real ones from ``cuda.bindings.driver`` (importing that
module needs no driver library), so results compare, print and ``int()`` exactly as on a
device. Arguments are converted as the real bindings convert them: device pointers and
handles take ints or the handle objects (a ctypes pointer or a str is a ``TypeError``), host
pointers take ints, ``None`` or any object with the buffer protocol (NumPy arrays, ctypes
arrays, bytes). Errors inside a call come back as the call's ``CUresult`` with ``None`` for
each output, as the real bindings return them.
"""

from __future__ import annotations

import functools
import operator
import threading

import numpy as np

from . import real

driver = real.driver()
R = driver.CUresult
SUCCESS = R.CUDA_SUCCESS
LOCK = threading.RLock()            # one lock for the whole emulated device (the driver is thread-safe)
STATE = None                        # the emulated device: device.py sets it (device imports api, not the reverse)


class CudaError(Exception):
    """Raised inside the emulator; the api wrapper turns it into the call's CUresult."""

    def __init__(self, code, why: str = ""):
        super().__init__(f"{code.name}{': ' + why if why else ''}")
        self.code = code


def api(outputs: int = 0, context: bool = True, name: str | None = None):
    """Decorate an emulated driver function: takes the lock, checks cuInit and the thread's current
    context (``context=True``), returns ``(SUCCESS, *values)`` or ``(error, None, ...)``."""
    def deco(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with LOCK:
                try:
                    if not STATE.initialized and fn.__name__ != "cuInit":
                        raise CudaError(R.CUDA_ERROR_NOT_INITIALIZED)
                    if context:
                        STATE.require_context()
                    values = fn(*args, **kwargs)
                except CudaError as exc:
                    return (exc.code,) + (None,) * outputs
            if outputs == 0:
                return (SUCCESS,)
            return (SUCCESS, values) if outputs == 1 else (SUCCESS, *values)
        call.emulated = True
        return call
    return deco


def device_ptr(value) -> int:
    """A CUdeviceptr argument: CUdeviceptr, int (NumPy integers too) or None."""
    if value is None:
        return 0
    if isinstance(value, driver.CUdeviceptr):
        return int(value)
    try:
        return int(value.__index__())
    except AttributeError:
        raise TypeError("an integer is required") from None


def size(value) -> int:
    """A C integer argument (size_t, unsigned int, flags): ints and NumPy integers, not str or float."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError("an integer is required") from None


def handle(value) -> int:
    """A handle argument (CUstream, CUevent, CUgraph, ...): the handle object, an int or None."""
    return device_ptr(value) if not hasattr(value, "getPtr") else int(value)


class HostPtr:
    """A host ``void*`` argument; keeps a buffer alive while the call uses its address."""

    def __init__(self, value):
        self.keep = None
        conv = getattr(type(value), "__index__", None) or getattr(type(value), "__int__", None)
        if conv is not None and not isinstance(value, (bytes, bytearray, memoryview, str)):
            try:
                self.address = int(conv(value))       # a size-1 NumPy array converts to its value, as in Cython
                return
            except (TypeError, ValueError):
                pass
        if value is None:
            self.address = 0
            return
        try:
            view = memoryview(value)
        except TypeError:
            raise TypeError(f"Provided argument is of type {type(value)} but expected Type None, int or object "
                            "with Buffer Protocol") from None
        if not (view.c_contiguous or view.f_contiguous):
            raise RuntimeError("Failed to retrieve buffer through Buffer Protocol")
        self.keep = np.frombuffer(view.cast("B") if view.ndim != 1 or view.format != "B" else view, np.uint8)
        self.address = int(self.keep.ctypes.data) if self.keep.size else 0
