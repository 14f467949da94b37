"""The emulated device and its contexts: cuInit, the device queries, the primary context, and
the current context of each CPU thread.

As on a device: nothing works before ``cuInit(0)`` (``CUDA_ERROR_NOT_INITIALIZED``); a call
that needs a context fails with ``CUDA_ERROR_INVALID_CONTEXT`` on a thread where none is
current (contexts are bound per thread: ``cuCtxSetCurrent`` on one thread does nothing for
another); the primary context is destroyed when its last retain is released, freeing all its
memory; an illegal address found at a synchronization makes the context unusable (every
later call returns that error). TensorRT reaches CUDA through cudart, which makes the primary
context current on a thread that has none: ``cudart_current`` does the same for the emulated
TensorRT, so a thread that never called ``cuCtxSetCurrent`` still fails on its first *driver*
call, exactly as on a device.

Settings (read once, when the device is first used): ``AVGN_EMULATE_GPU_CC`` (compute
capability, default 8.7 like Jetson Orin), ``AVGN_EMULATE_GPU_MEMORY_MIB`` (default 8192),
``AVGN_EMULATE_CUDA_VERSION`` (driver's CUDA version, default the cuda-bindings major's:
12.6 or 13.0).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading

from . import api as _api
from .api import LOCK, CudaError, R, api, driver, handle, size
from .memory import Memory

from ..deps import EMULATED_GPU_NAME as NAME  # noqa: E402 (the product's seam names the stand-in)
_handles = itertools.count(0x7E5700000000, 0x40)


def new_handle() -> int:
    return next(_handles)


class Device:
    def __init__(self):
        cc = os.environ.get("AVGN_EMULATE_GPU_CC", "8.7")
        major, _, minor = cc.partition(".")
        self.cc = (int(major), int(minor or 0))
        self.total = int(os.environ.get("AVGN_EMULATE_GPU_MEMORY_MIB", "8192")) << 20
        bindings_major = _bindings_major()
        default = "12.6" if bindings_major == 12 else f"{bindings_major}.0"
        cuda = os.environ.get("AVGN_EMULATE_CUDA_VERSION", default)
        cmaj, _, cmin = cuda.partition(".")
        self.driver_version = int(cmaj) * 1000 + int(cmin or 0) * 10
        self.memory = Memory(self.total, pinned_bytes=4 << 30)
        a = driver.CUdevice_attribute
        self.attributes = {
            a.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: self.cc[0],
            a.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: self.cc[1],
            a.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: 8, a.CU_DEVICE_ATTRIBUTE_WARP_SIZE: 32,
            a.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: 1024,
            a.CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: 1024, a.CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: 1024,
            a.CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: 64, a.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: 2**31 - 1,
            a.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: 65535, a.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: 65535,
            a.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: 48 << 10,
            a.CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: 1, a.CU_DEVICE_ATTRIBUTE_INTEGRATED: 1,
            a.CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: 1, a.CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: 512,
        }


def _bindings_major() -> int:
    try:
        from cuda.bindings import _version
        return int(_version.__version__.split(".")[0])
    except Exception:
        return 13


class Context:
    def __init__(self, device: Device, primary: bool):
        self.handle, self.device, self.primary = new_handle(), device, primary
        self.alive, self.refcount, self.sticky = True, 0, None
        self.objects: dict[int, object] = {}        # streams, events, modules, functions, graphs, graph execs
        self.pending: dict[int, object] = {}        # ops enqueued and not yet run, by sequence number
        self.legacy = None                          # the legacy default stream (made by streams.py)


class State:
    def __init__(self):
        self.initialized = False
        self._device: Device | None = None
        self.primary: Context | None = None
        self.contexts: dict[int, Context] = {}
        self._tls = threading.local()
        self.cudart_retained = False

    @property
    def device(self) -> Device:
        if self._device is None:
            self._device = Device()
        return self._device

    @property
    def memory(self) -> Memory:
        return self.device.memory

    # -- the current context of this thread (a stack, for cuCtxPushCurrent / cuCtxPopCurrent)
    @property
    def stack(self) -> list:
        if not hasattr(self._tls, "stack"):
            self._tls.stack = []
        return self._tls.stack

    def current(self) -> Context | None:
        return self.stack[-1] if self.stack else None

    def require_context(self) -> Context:
        ctx = self.current()
        if ctx is None:
            raise CudaError(R.CUDA_ERROR_INVALID_CONTEXT, "no context is current on this thread")
        if not ctx.alive:
            raise CudaError(R.CUDA_ERROR_CONTEXT_IS_DESTROYED)
        if ctx.sticky is not None:
            raise CudaError(ctx.sticky)
        return ctx

    def context(self, value) -> Context:
        ctx = self.contexts.get(handle(value))
        if ctx is None:
            raise CudaError(R.CUDA_ERROR_INVALID_CONTEXT, "not a context")
        return ctx

    def retain_primary(self) -> Context:
        if self.primary is None or not self.primary.alive:
            self.primary = Context(self.device, primary=True)
            self.contexts[self.primary.handle] = self.primary
        self.primary.refcount += 1
        return self.primary

    def release_primary(self) -> None:
        ctx = self.primary
        if ctx is None or not ctx.alive or ctx.refcount == 0:
            raise CudaError(R.CUDA_ERROR_INVALID_CONTEXT, "the primary context is not retained")
        ctx.refcount -= 1
        if ctx.refcount == 0:
            self.destroy(ctx)

    def destroy(self, ctx: Context) -> None:
        """What destroying a context does: its memory, streams, events, modules and graphs go."""
        ctx.alive = False
        ctx.pending.clear()
        ctx.objects.clear()
        for arena in (self.memory.device, self.memory.pinned):
            for a in arena.live():
                if a.owner is ctx or getattr(a.owner, "ctx", None) is ctx:
                    arena.free(a)

    def initialize(self) -> None:
        if not self.initialized:
            announce()
            self.initialized = True

    def cudart_current(self) -> Context:
        """cudart's lazy initialization, as TensorRT triggers it: cuInit, and the primary context
        made current on this thread if none is (cudart keeps one retain for the process)."""
        with LOCK:
            self.initialize()
            if self.current() is None:
                if not self.cudart_retained:
                    self.retain_primary()
                    self.cudart_retained = True
                self.stack.append(self.primary)
            return self.require_context()


STATE = State()
_api.STATE = STATE


def _ordinal(dev) -> int:
    ordinal = int(dev)
    if ordinal != 0:
        raise CudaError(R.CUDA_ERROR_INVALID_DEVICE, f"device {ordinal}: the emulator has one device, 0")
    return ordinal


@api(context=False)
def cuInit(Flags):
    if size(Flags) != 0:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, "cuInit flags must be 0")
    STATE.initialize()


def cuDriverGetVersion():
    return (R.CUDA_SUCCESS, STATE.device.driver_version)


@api(outputs=1, context=False)
def cuDeviceGet(ordinal):
    return driver.CUdevice(_ordinal(ordinal))


@api(outputs=1, context=False)
def cuDeviceGetCount():
    return 1


@api(outputs=1, context=False)
def cuDeviceGetName(length, dev):
    _ordinal(dev)
    raw = NAME.encode()[: max(int(length) - 1, 0)]
    return raw + b"\0" * (int(length) - len(raw))


@api(outputs=1, context=False)
def cuDeviceTotalMem(dev):
    _ordinal(dev)
    return STATE.device.total


@api(outputs=1, context=False)
def cuDeviceGetAttribute(attrib, dev):
    _ordinal(dev)
    attrib = driver.CUdevice_attribute(int(attrib))
    if attrib not in STATE.device.attributes:
        raise NotImplementedError(f"the emulated GPU does not model {attrib.name}")
    return STATE.device.attributes[attrib]


@api(outputs=1, context=False)
def cuDevicePrimaryCtxRetain(dev):
    _ordinal(dev)
    return driver.CUcontext(STATE.retain_primary().handle)


@api(context=False)
def cuDevicePrimaryCtxRelease(dev):
    _ordinal(dev)
    STATE.release_primary()


@api(context=False)
def cuCtxSetCurrent(ctx):
    stack = STATE.stack
    if handle(ctx) == 0:
        if stack:
            stack.pop()
        return
    target = STATE.context(ctx)
    if stack:
        stack[-1] = target
    else:
        stack.append(target)


@api(outputs=1, context=False)
def cuCtxGetCurrent():
    ctx = STATE.current()
    return driver.CUcontext(ctx.handle if ctx is not None else 0)


@api(context=False)
def cuCtxPushCurrent(ctx):
    STATE.stack.append(STATE.context(ctx))


@api(outputs=1)
def cuCtxPopCurrent():
    return driver.CUcontext(STATE.stack.pop().handle)


@api(outputs=1)
def cuCtxGetDevice():
    return driver.CUdevice(0)


@api(outputs=2)
def cuMemGetInfo():
    dev = STATE.device
    return dev.total - dev.memory.device.used, dev.total


def cuGetErrorName(error):
    try:
        return (R.CUDA_SUCCESS, R(int(error)).name.encode())
    except ValueError:
        return (R.CUDA_ERROR_INVALID_VALUE, None)


def cuGetErrorString(error):
    err, name = cuGetErrorName(error)
    return (err, None if name is None else name.decode().removeprefix("CUDA_ERROR_").replace("_", " ").lower().encode())


def announce() -> None:
    """Say once per process that the GPU is emulated (called at the first cuInit)."""
    if not getattr(announce, "done", False):
        announce.done = True
        logging.getLogger("avgn_edge.emulator").warning(
            "AVGN_EMULATE_GPU=1: the GPU is EMULATED (%s, compute %s, TensorRT %s stand-in): results are correct "
            "or wrong as on a device, but no timing is a GPU figure", NAME, "%d.%d" % STATE.device.cc,
            getattr(sys.modules.get("tensorrt"), "__version__", "?"))
