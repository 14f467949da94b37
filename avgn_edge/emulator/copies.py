"""Allocation and copies on the emulated device, with the real driver's rules.

* ``cuMemAlloc`` / ``cuMemHostAlloc`` are refused during a (non-relaxed) stream capture, and
  zero bytes is ``CUDA_ERROR_INVALID_VALUE``. ``cuMemFree`` / ``cuMemFreeHost`` take only the
  address an allocation returned, and wait for the device to finish first, as they do on a GPU.
* A device argument must lie inside one live device allocation (else ``CUDA_ERROR_INVALID_VALUE``
  at the call); a host argument must be host memory (a device address there is refused).
* Asynchronous copies between device and *pinned* memory happen in stream order when the stream
  runs; with *pageable* host memory they are synchronous, as the CUDA docs say (the host-to-device
  source is staged at the call, after the stream's earlier work; device-to-host returns when
  the data is there), and they cannot be captured into a graph.
* When queued work finally runs, its memory is checked again: freed meanwhile means
  ``CUDA_ERROR_ILLEGAL_ADDRESS`` at that synchronization, and the context is lost.
"""

from __future__ import annotations

import ctypes

from .api import CudaError, HostPtr, R, api, device_ptr, driver, size
from .device import STATE
from .streams import check_capture_safe, enqueue, legacy, run, stream_of, sync_context

MEMHOSTALLOC_FLAGS = 0x1 | 0x2 | 0x4        # PORTABLE | DEVICEMAP | WRITECOMBINED


def _device(ptr: int, nbytes: int, what: str):
    a = STATE.memory.device_range(ptr, nbytes)
    if a is None:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE,
                        f"{what} [{ptr:#x}, +{nbytes}) is not inside one device allocation "
                        f"({STATE.memory.describe(ptr)})")
    return a


def _host(ptr: int, nbytes: int, what: str) -> str:
    kind = STATE.memory.host_kind(ptr, nbytes)
    if kind == "invalid" or ptr == 0:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"{what} {ptr:#x} is not usable host memory "
                                                    f"({STATE.memory.describe(ptr)})")
    return kind


def _copy_op(dst: int, src: int, n: int, label: str, device_args=(), pinned_args=(), staged: bytes | None = None):
    """The queued copy: re-checks its device / pinned memory when it runs."""
    def fn():
        for p in device_args:
            if STATE.memory.device_range(p, n) is None:
                raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{label}: {STATE.memory.describe(p)}")
        for p in pinned_args:
            if STATE.memory.host_kind(p, n) != "pinned":
                raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{label}: {STATE.memory.describe(p)}")
        if staged is not None:
            ctypes.memmove(dst, staged, n)
        else:
            ctypes.memmove(dst, src, n)
    return fn


def _htod(dst, src, n, stream, label):
    dst, n = device_ptr(dst), size(n)
    host = HostPtr(src)
    _device(dst, n, "destination")
    kind = _host(host.address, n, "source")
    if kind == "pageable":
        if stream.capture is not None:
            _refuse_pageable(stream)
        run(stream.last)                             # staged after the stream's earlier work ...
        staged = ctypes.string_at(host.address, n)   # ... so the caller may reuse its buffer at once
        return enqueue(stream, label, _copy_op(dst, 0, n, label, (dst,), staged=staged))
    return enqueue(stream, label, _copy_op(dst, host.address, n, label, (dst,), (host.address,)))


def _dtoh(dst, src, n, stream, label):
    src, n = device_ptr(src), size(n)
    host = HostPtr(dst)
    _device(src, n, "source")
    kind = _host(host.address, n, "destination")
    if kind == "pageable" and stream.capture is not None:
        _refuse_pageable(stream)
    op = enqueue(stream, label, _copy_op(host.address, src, n, label, (src,), (host.address,) if kind == "pinned" else ()))
    if kind == "pageable":
        run(op)                                      # returns once the data has arrived
    return op


def _dtod(dst, src, n, stream, label):
    dst, src, n = device_ptr(dst), device_ptr(src), size(n)
    _device(dst, n, "destination")
    _device(src, n, "source")
    return enqueue(stream, label, _copy_op(dst, src, n, label, (dst, src)))


def _refuse_pageable(stream):
    from .streams import invalidate
    invalidate(stream.capture, "a copy with pageable host memory")
    raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "pageable host memory cannot be captured")


def _sync_copy(kind, *args):
    check_capture_safe("a synchronous copy")
    op = kind(*args, legacy(STATE.require_context()), "synchronous copy")
    run(op)
    ctx = STATE.require_context()
    if ctx.sticky is not None:
        raise CudaError(ctx.sticky)


@api(outputs=1)
def cuMemAlloc(bytesize):
    check_capture_safe("cuMemAlloc")
    if size(bytesize) == 0:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, "cuMemAlloc of 0 bytes")
    a = STATE.memory.device.alloc(size(bytesize), owner=STATE.require_context())
    if a is None:
        raise CudaError(R.CUDA_ERROR_OUT_OF_MEMORY)
    return driver.CUdeviceptr(a.base)


@api()
def cuMemFree(dptr):
    check_capture_safe("cuMemFree")
    ptr = device_ptr(dptr)
    a = STATE.memory.device.find(ptr)
    if a is None or a.base != ptr:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"cuMemFree({ptr:#x}): {STATE.memory.describe(ptr)}")
    sync_context(STATE.require_context())
    STATE.memory.device.free(a)


@api(outputs=1)
def cuMemHostAlloc(bytesize, Flags):
    check_capture_safe("cuMemHostAlloc")
    if size(bytesize) == 0 or size(Flags) & ~MEMHOSTALLOC_FLAGS:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE)
    a = STATE.memory.pinned.alloc(size(bytesize), owner=STATE.require_context())
    if a is None:
        raise CudaError(R.CUDA_ERROR_OUT_OF_MEMORY)
    return a.base


def cuMemAllocHost(bytesize):
    return cuMemHostAlloc(bytesize, 0)


@api()
def cuMemFreeHost(p):
    check_capture_safe("cuMemFreeHost")
    ptr = HostPtr(p).address
    a = STATE.memory.pinned.find(ptr)
    if a is None or a.base != ptr:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"cuMemFreeHost({ptr:#x}): {STATE.memory.describe(ptr)}")
    sync_context(STATE.require_context())
    STATE.memory.pinned.free(a)


@api()
def cuMemcpyHtoD(dstDevice, srcHost, ByteCount):
    _sync_copy(_htod, dstDevice, srcHost, ByteCount)


@api()
def cuMemcpyDtoH(dstHost, srcDevice, ByteCount):
    _sync_copy(_dtoh, dstHost, srcDevice, ByteCount)


@api()
def cuMemcpyDtoD(dstDevice, srcDevice, ByteCount):
    _sync_copy(_dtod, dstDevice, srcDevice, ByteCount)


@api()
def cuMemcpyHtoDAsync(dstDevice, srcHost, ByteCount, hStream):
    _htod(dstDevice, srcHost, ByteCount, stream_of(hStream), "cuMemcpyHtoDAsync")


@api()
def cuMemcpyDtoHAsync(dstHost, srcDevice, ByteCount, hStream):
    _dtoh(dstHost, srcDevice, ByteCount, stream_of(hStream), "cuMemcpyDtoHAsync")


@api()
def cuMemcpyDtoDAsync(dstDevice, srcDevice, ByteCount, hStream):
    _dtod(dstDevice, srcDevice, ByteCount, stream_of(hStream), "cuMemcpyDtoDAsync")


@api()
def cuMemsetD8Async(dstDevice, uc, N, hStream):
    dst, n = device_ptr(dstDevice), size(N)
    _device(dst, n, "destination")

    def fn():
        if STATE.memory.device_range(dst, n) is None:
            raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, "cuMemsetD8Async on freed memory")
        ctypes.memset(dst, size(uc) & 0xFF, n)
    enqueue(stream_of(hStream), "cuMemsetD8Async", fn)
