"""The emulated CUDA driver refuses what a device refuses: one test per rule (avgn_edge/emulator).

These test the emulator itself, so they run on it whatever the machine has (``emulated_gpu``).
"""

from __future__ import annotations

import ctypes
import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("cuda.bindings.driver", reason="the emulator reuses cuda-bindings' types")


@pytest.fixture
def d(emulated_gpu):
    """The emulated driver module with the primary context current on this thread."""
    from cuda.bindings import driver
    assert driver.EMULATED
    assert driver.cuInit(0) == (driver.CUresult.CUDA_SUCCESS,)
    dev = driver.cuDeviceGet(0)[1]
    ctx = driver.cuDevicePrimaryCtxRetain(dev)[1]
    driver.cuCtxPushCurrent(ctx)
    yield driver
    driver.cuCtxPopCurrent()
    driver.cuDevicePrimaryCtxRelease(dev)


def ok(result):
    assert int(result[0]) == 0, result
    return result[1] if len(result) == 2 else result[1:] or None


def pinned(d, n):
    ptr = ok(d.cuMemHostAlloc(n, 0))
    return ptr, np.frombuffer((ctypes.c_uint8 * n).from_address(ptr), np.uint8)


def test_nothing_works_before_cuinit(d, monkeypatch):
    from avgn_edge.emulator.device import STATE
    monkeypatch.setattr(STATE, "initialized", False)
    assert d.cuMemAlloc(16) == (d.CUresult.CUDA_ERROR_NOT_INITIALIZED, None)
    assert d.cuDeviceGet(0)[0] == d.CUresult.CUDA_ERROR_NOT_INITIALIZED


def test_context_is_per_thread(d):
    out = []
    t = threading.Thread(target=lambda: out.append((d.cuMemAlloc(16), d.cuCtxGetCurrent())))
    t.start()
    t.join()
    (err, ptr), (_, current) = out[0]
    assert err == d.CUresult.CUDA_ERROR_INVALID_CONTEXT and ptr is None and int(current) == 0
    assert int(ok(d.cuCtxGetCurrent())) != 0                      # still current here


def test_results_are_tuples_of_the_real_types(d):
    from avgn_edge.emulator import real
    rd = real.driver()
    err, ptr = d.cuMemAlloc(100)
    assert type(err) is rd.CUresult and isinstance(ptr, rd.CUdeviceptr) and int(ptr) > 0
    s = ok(d.cuStreamCreate(0))
    assert isinstance(s, rd.CUstream) and isinstance(ok(d.cuEventCreate(0)), rd.CUevent)
    assert d.cuMemFree(ptr) == (rd.CUresult.CUDA_SUCCESS,)
    with pytest.raises(TypeError):
        d.cuMemAlloc("100")
    with pytest.raises(TypeError, match="an integer is required"):
        d.cuMemFree(ctypes.c_void_p(16))
    d.cuStreamDestroy(s)


def test_allocations_are_aligned_and_zero_bytes_refused(d):
    ptrs = [ok(d.cuMemAlloc(n)) for n in (1, 3, 100, 257, 4096 + 3)]
    assert all(int(p) % 512 == 0 for p in ptrs)
    assert d.cuMemAlloc(0)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE
    for p in ptrs:
        ok(d.cuMemFree(p))


def test_freed_memory_is_refused_poisoned_and_not_reused(d):
    from avgn_edge.emulator.device import STATE
    p = int(ok(d.cuMemAlloc(1024)))
    ok(d.cuMemcpyHtoD(p, np.arange(256, dtype=np.float32), 1024))
    ok(d.cuMemFree(p))
    assert d.cuMemFree(p)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE            # double free
    assert d.cuMemcpyHtoD(p, np.zeros(4, np.uint8), 4)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE
    assert STATE.memory.device.view(p, 1024).min() == 0xFF                    # NaN for any reader
    assert int(ok(d.cuMemAlloc(1024))) != p


def test_copies_check_the_kind_and_extent_of_memory(d):
    p = int(ok(d.cuMemAlloc(64)))
    q = int(ok(d.cuMemAlloc(64)))
    host = np.zeros(64, np.uint8)
    assert d.cuMemcpyHtoD(p, q, 64)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE   # a device pointer as host memory
    assert d.cuMemcpyHtoD(p, host, 65)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE  # past the allocation
    assert d.cuMemcpyHtoD(p + 8, host, 56) == (d.CUresult.CUDA_SUCCESS,)        # inside it: fine
    for src in (host, host.ctypes.data, (ctypes.c_uint8 * 64)(), bytearray(64)):  # what the real bindings take
        ok(d.cuMemcpyHtoD(p, src, 64))
    ok(d.cuMemFree(p))
    ok(d.cuMemFree(q))


def test_async_copy_from_pinned_memory_reads_it_when_the_stream_runs(d):
    """Overwriting a pinned buffer before its copy ran gives the new bytes, as on a device;
    pageable memory is staged at the call (the CUDA docs' pageable rule), so it gives the old."""
    s = ok(d.cuStreamCreate(d.CUstream_flags.CU_STREAM_NON_BLOCKING))
    dev = int(ok(d.cuMemAlloc(16)))
    hp, h = pinned(d, 16)
    out = np.zeros(16, np.uint8)
    h[:] = 1
    ok(d.cuMemcpyHtoDAsync(dev, hp, 16, s))
    h[:] = 2                                             # reused too early
    ok(d.cuStreamSynchronize(s))
    ok(d.cuMemcpyDtoH(out, dev, 16))
    assert (out == 2).all()
    page = np.full(16, 3, np.uint8)
    ok(d.cuMemcpyHtoDAsync(dev, page, 16, s))
    page[:] = 4
    ok(d.cuStreamSynchronize(s))
    ok(d.cuMemcpyDtoH(out, dev, 16))
    assert (out == 3).all()
    ok(d.cuMemFreeHost(hp))
    ok(d.cuMemFree(dev))
    d.cuStreamDestroy(s)


def test_work_is_not_done_before_a_sync_says_so(d):
    s = ok(d.cuStreamCreate(1))
    dev = int(ok(d.cuMemAlloc(16)))
    hp, h = pinned(d, 16)
    ok(d.cuMemsetD8Async(dev, 7, 16, s))
    ok(d.cuMemcpyDtoHAsync(hp, dev, 16, s))
    e0, e1 = ok(d.cuEventCreate(0)), ok(d.cuEventCreate(0))
    ok(d.cuEventRecord(e0, s))
    ok(d.cuEventRecord(e1, s))
    assert (h == 0).all()                                   # nothing ran yet
    assert d.cuEventElapsedTime(e0, e1) == (d.CUresult.CUDA_ERROR_NOT_READY, None)
    assert d.cuEventQuery(e1) == (d.CUresult.CUDA_ERROR_NOT_READY,)   # ... and the device moves on
    assert d.cuEventQuery(e1) == (d.CUresult.CUDA_SUCCESS,)
    assert (h == 7).all() and ok(d.cuEventElapsedTime(e0, e1)) >= 0.0
    nt = ok(d.cuEventCreate(2))                             # CU_EVENT_DISABLE_TIMING
    ok(d.cuEventRecord(nt, s))
    ok(d.cuEventSynchronize(nt))
    assert d.cuEventElapsedTime(e0, nt)[0] == d.CUresult.CUDA_ERROR_INVALID_HANDLE
    for e in (e0, e1, nt):
        ok(d.cuEventDestroy(e))
    assert d.cuEventQuery(e0)[0] == d.CUresult.CUDA_ERROR_INVALID_HANDLE
    ok(d.cuMemFreeHost(hp))
    ok(d.cuMemFree(dev))
    d.cuStreamDestroy(s)


def test_legacy_stream_waits_for_blocking_streams_only(d):
    blocking, free = ok(d.cuStreamCreate(0)), ok(d.cuStreamCreate(d.CUstream_flags.CU_STREAM_NON_BLOCKING))
    dev = int(ok(d.cuMemAlloc(16)))
    hp, h = pinned(d, 32)
    ok(d.cuMemsetD8Async(dev, 5, 16, blocking))
    ok(d.cuMemcpyDtoHAsync(hp, dev, 16, blocking))
    ok(d.cuMemcpyDtoHAsync(hp + 16, dev, 16, free))
    ok(d.cuStreamSynchronize(0))                            # the legacy default stream
    assert (h[:16] == 5).all() and (h[16:] == 0).all()
    ok(d.cuStreamSynchronize(free))
    ok(d.cuMemFreeHost(hp))
    ok(d.cuMemFree(dev))
    for s in (blocking, free):
        d.cuStreamDestroy(s)


CAPTURE = "CU_STREAM_CAPTURE_MODE_"


def _capturing(d, mode="THREAD_LOCAL"):
    s = ok(d.cuStreamCreate(1))
    ok(d.cuStreamBeginCapture(s, getattr(d.CUstreamCaptureMode, CAPTURE + mode)))
    return s


@pytest.mark.parametrize("call", ["sync copy", "stream sync", "alloc", "host alloc", "ctx sync", "pageable copy"])
def test_illegal_calls_during_capture_invalidate_it(d, call):
    dev = int(ok(d.cuMemAlloc(16)))
    s = _capturing(d)
    host = np.zeros(16, np.uint8)
    err = {"sync copy": lambda: d.cuMemcpyHtoD(dev, host, 16), "stream sync": lambda: d.cuStreamSynchronize(s),
           "alloc": lambda: d.cuMemAlloc(16), "host alloc": lambda: d.cuMemHostAlloc(16, 0),
           "ctx sync": lambda: d.cuCtxSynchronize(),
           "pageable copy": lambda: d.cuMemcpyHtoDAsync(dev, host, 16, s)}[call]()[0]
    assert err == d.CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
    status = ok(d.cuStreamIsCapturing(s))
    assert status == d.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_INVALIDATED
    assert d.cuStreamEndCapture(s) == (d.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, None)
    ok(d.cuMemFree(dev))
    d.cuStreamDestroy(s)


def test_capture_modes_and_threads(d):
    assert d.cuStreamBeginCapture(0, d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL)[0] == \
        d.CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED           # never the legacy stream
    relaxed = _capturing(d, "RELAXED")
    p = ok(d.cuMemAlloc(16))                                    # allowed in relaxed mode
    assert d.cuStreamBeginCapture(relaxed, 0)[0] == d.CUresult.CUDA_ERROR_ILLEGAL_STATE
    ok(d.cuGraphDestroy(ok(d.cuStreamEndCapture(relaxed))))
    glob = _capturing(d, "GLOBAL")
    ctx = ok(d.cuCtxGetCurrent())
    seen = []

    def other():                                                # global mode: unsafe calls anywhere are refused
        d.cuCtxSetCurrent(ctx)
        seen.append(d.cuMemAlloc(16)[0])
        seen.append(d.cuStreamEndCapture(glob)[0])
        d.cuCtxSetCurrent(0)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [d.CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, d.CUresult.CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD]
    assert d.cuStreamEndCapture(glob)[0] == d.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    ok(d.cuMemFree(p))


def test_a_graph_replays_what_was_captured(d):
    """Captured copies read their pinned source when replayed; nothing runs at capture time."""
    dev = int(ok(d.cuMemAlloc(16)))
    hin, a = pinned(d, 16)
    hout, b = pinned(d, 16)
    s = _capturing(d)
    ok(d.cuMemcpyHtoDAsync(dev, hin, 16, s))
    ok(d.cuMemcpyDtoHAsync(hout, dev, 16, s))
    graph = ok(d.cuStreamEndCapture(s))
    exe = ok(d.cuGraphInstantiate(graph, 0))
    ok(d.cuGraphDestroy(graph))
    for value in (3, 9):
        a[:] = value
        ok(d.cuGraphLaunch(exe, s))
        assert not (b == value).all()                            # launched, not run
        ok(d.cuStreamSynchronize(s))
        assert (b == value).all()
    ok(d.cuGraphExecDestroy(exe))
    assert d.cuGraphLaunch(exe, s)[0] == d.CUresult.CUDA_ERROR_INVALID_VALUE
    for p in (hin, hout):
        ok(d.cuMemFreeHost(p))
    ok(d.cuMemFree(dev))
    d.cuStreamDestroy(s)


def test_emulated_functions_match_the_real_signatures():
    """Every emulated function exists in the real cuda.bindings.driver with the same parameters."""
    from avgn_edge.emulator import driver, real
    rd = real.driver()
    assert len(driver.IMPLEMENTED) > 40
    for name in driver.IMPLEMENTED:
        assert hasattr(rd, name), name
        want = list(inspect.signature(getattr(rd, name)).parameters)
        assert list(inspect.signature(getattr(driver, name)).parameters) == want, name
    with pytest.raises(NotImplementedError, match="cuMemPoolCreate"):
        driver.cuMemPoolCreate(None)


def test_device_description(d):
    name = ok(d.cuDeviceGetName(64, ok(d.cuDeviceGet(0))))
    assert name.rstrip(b"\0") == b"avgn-edge emulated GPU" and len(name) == 64
    attr = d.CUdevice_attribute
    cc = [ok(d.cuDeviceGetAttribute(getattr(attr, f"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{x}"), 0))
          for x in ("MAJOR", "MINOR")]
    assert cc == [8, 7]                                          # Jetson Orin's by default
    assert d.cuDeviceGet(1)[0] == d.CUresult.CUDA_ERROR_INVALID_DEVICE
    free, total = ok(d.cuMemGetInfo())
    assert 0 < free <= total


def run_emulated(code: str, **env) -> subprocess.CompletedProcess:
    """A fresh process on the emulated GPU (for what leaves a context unusable)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "AVGN_EMULATE_GPU": "1", "PYTHONPATH": str(ROOT), **env})


def test_a_context_that_faulted_stays_unusable():
    res = run_emulated(
        "from avgn_edge.deps import start_requested\nstart_requested()\nfrom cuda.bindings import driver as d\n"
        "from avgn_edge.emulator.device import STATE\nfrom avgn_edge.emulator import streams\n"
        "from avgn_edge.emulator.api import CudaError, R\n"
        "d.cuInit(0); d.cuCtxSetCurrent(d.cuDevicePrimaryCtxRetain(0)[1])\n"
        "s = d.cuStreamCreate(0)[1]\n"
        "def fault(): raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, 'test')\n"
        "streams.enqueue(streams.stream_of(s), 'faulting kernel', fault)\n"
        "print(d.cuMemAlloc(16)[0].name, d.cuStreamSynchronize(s)[0].name, d.cuMemAlloc(16)[0].name)\n")
    assert res.stdout.split() == ["CUDA_SUCCESS", "CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_ILLEGAL_ADDRESS"], res.stderr
    assert "EMULATED" in res.stderr                               # said once, loudly


# ---------------------------------------------------------------- kernels: real cubins, host builds

@pytest.fixture(scope="module")
def kcache(tmp_path_factory):
    return tmp_path_factory.mktemp("kernel-cache")


def _cubin(arch, kcache):
    from avgn_edge.kernels.compile import compile_cubin
    try:
        return compile_cubin(arch, cache_dir=kcache)
    except Exception as exc:                                   # no NVRTC: nothing to load
        pytest.skip(f"NVRTC unavailable: {exc}")


def test_only_cubins_for_this_gpu_load(d, kcache):
    good = _cubin("87", kcache)
    bad_machine = good[:18] + (62).to_bytes(2, "little") + good[20:]        # EM_X86_64
    R = d.CUresult
    assert d.cuModuleLoadData(b"not an ELF at all")[0] == R.CUDA_ERROR_INVALID_IMAGE
    assert d.cuModuleLoadData(bad_machine)[0] == R.CUDA_ERROR_INVALID_IMAGE
    assert d.cuModuleLoadData(b"//\n.version 8.5\n.target sm_87\n")[0] == R.CUDA_ERROR_NOT_SUPPORTED
    assert d.cuModuleLoadData(_cubin("89", kcache))[0] == R.CUDA_ERROR_NO_BINARY_FOR_GPU     # newer minor
    assert d.cuModuleLoadData(_cubin("90", kcache))[0] == R.CUDA_ERROR_NO_BINARY_FOR_GPU     # other major
    older = ok(d.cuModuleLoadData(_cubin("80", kcache)))                                   # same major, older: runs
    mod = ok(d.cuModuleLoadData(good))
    assert int(ok(d.cuModuleGetFunction(mod, b"crop_resize_f32"))) != 0
    assert d.cuModuleGetFunction(mod, b"crop_resize")[0] == R.CUDA_ERROR_NOT_FOUND
    with pytest.raises(TypeError, match="expected bytes"):
        d.cuModuleGetFunction(mod, "crop_resize_f32")
    for m in (older, mod):
        ok(d.cuModuleUnload(m))
    assert d.cuModuleGetFunction(mod, b"crop_resize_f32")[0] == R.CUDA_ERROR_INVALID_HANDLE


def test_kernel_parameters_are_read_from_the_cubin(d, kcache):
    from avgn_edge.emulator.kernels import parse_cubin
    kernels = parse_cubin(_cubin("87", kcache), (8, 7))
    assert set(kernels) == {"crop_resize_f32", "crop_resize_f16"}
    assert kernels["crop_resize_f32"].params == [(0, 96)] and kernels["crop_resize_f32"].param_bytes == 96


def test_launches_are_checked_and_run_in_stream_order(d, kcache):
    from avgn_edge.kernels.launch import CropKernel, make_args
    frames = np.random.default_rng(0).integers(0, 256, (2, 20, 30, 3), np.uint8)
    fdev, odev = int(ok(d.cuMemAlloc(frames.nbytes))), int(ok(d.cuMemAlloc(2 * 3 * 8 * 8 * 4)))
    ok(d.cuMemcpyHtoD(fdev, frames, frames.nbytes))
    s = ok(d.cuStreamCreate(1))
    R = d.CUresult
    with CropKernel(_cubin("87", kcache)) as k:
        f = k.functions[False]
        args = make_args(fdev, frames.shape[:3], odev, 2, 8, 8, (0, 0, 0), (1, 1, 1))
        assert d.cuLaunchKernel(f, 1, 2, 1, 2048, 1, 1, 0, s, ((args,), (None,)), 0)[0] == R.CUDA_ERROR_INVALID_VALUE
        assert d.cuLaunchKernel(f, 1, 70000, 1, 64, 1, 1, 0, s, ((args,), (None,)), 0)[0] == R.CUDA_ERROR_INVALID_VALUE
        class Short(ctypes.Structure):                                              # not the 96-byte CropArgs
            _fields_ = [("raw", ctypes.c_char * 88)]
        short = Short.from_buffer_copy(bytes(args)[:88])
        assert d.cuLaunchKernel(f, 1, 2, 1, 64, 1, 1, 0, s, ((short,), (None,)), 0)[0] == R.CUDA_ERROR_INVALID_VALUE
        ok(d.cuMemsetD8Async(odev, 0, 2 * 3 * 64 * 4, s))
        k.glance(fdev, frames.shape[:3], odev, 8, (0, 0, 0), (1, 1, 1), stream=s)
        out = np.zeros((2, 3, 8, 8), np.float32)
        from avgn_edge.emulator.device import STATE
        assert not STATE.memory.device.view(odev, out.nbytes).any()               # queued, not run
        ok(d.cuStreamSynchronize(s))
        ok(d.cuMemcpyDtoH(out, odev, out.nbytes))
    from avgn_edge.kernels.reference import glance_views
    np.testing.assert_allclose(out, glance_views(frames, 8, (0, 0, 0), (1, 1, 1)), atol=1e-4)
    for p in (fdev, odev):
        ok(d.cuMemFree(p))
    d.cuStreamDestroy(s)


def test_a_kernel_reading_freed_memory_faults_at_the_next_sync():
    res = run_emulated(
        "import numpy as np\nfrom avgn_edge.deps import start_requested\nstart_requested()\nfrom cuda.bindings import driver as d\n"
        "from avgn_edge.kernels.launch import CropKernel\n"
        "d.cuInit(0); d.cuCtxSetCurrent(d.cuDevicePrimaryCtxRetain(0)[1])\n"
        "f = int(d.cuMemAlloc(2 * 20 * 30 * 3)[1]); o = int(d.cuMemAlloc(2 * 3 * 64 * 4)[1]); small = int(d.cuMemAlloc(64)[1])\n"
        "s = d.cuStreamCreate(1)[1]\n"
        "k = CropKernel()\n"
        "d.cuMemFree(f)\n"
        "k.glance(f, (2, 20, 30), o, 8, (0, 0, 0), (1, 1, 1), stream=s)\n"          # launching is fine ...
        "print(d.cuStreamSynchronize(s)[0].name)\n"                                 # ... the fault shows here
        "print(d.cuMemAlloc(16)[0].name)\n")
    assert res.stdout.split() == ["CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_ILLEGAL_ADDRESS"], res.stderr[-2000:]
    res = run_emulated(                                                           # too small a ring faults too
        "from avgn_edge.deps import start_requested\nstart_requested()\nfrom cuda.bindings import driver as d\nfrom avgn_edge.kernels.launch import CropKernel\n"
        "d.cuInit(0); d.cuCtxSetCurrent(d.cuDevicePrimaryCtxRetain(0)[1])\n"
        "f = int(d.cuMemAlloc(20 * 30 * 3)[1]); o = int(d.cuMemAlloc(2 * 3 * 64 * 4)[1]); s = d.cuStreamCreate(1)[1]\n"
        "CropKernel().glance(f, (2, 20, 30), o, 8, (0, 0, 0), (1, 1, 1), stream=s)\n"
        "print(d.cuStreamSynchronize(s)[0].name)\n")
    assert res.stdout.split() == ["CUDA_ERROR_ILLEGAL_ADDRESS"], res.stderr[-2000:]
