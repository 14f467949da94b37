"""The crop kernel and the device rings on a CUDA device, against the NumPy reference.

    python -m avgn_edge.kernels.selftest            # any NVIDIA GPU with cuda-bindings + NVRTC (no TensorRT)
    AVGN_EMULATE_GPU=1 python -m avgn_edge.kernels.selftest     # the same checks on the emulated GPU

Exactly what the gpu-marked tests in tests/kernels/test_kernels.py run. Each check prints one line;
the exit code is 1 if any fails.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np

from ..deps import gpu_emulated
from . import reference as R
from .cuda_driver import DeviceMemory, PrimaryContext, check, driver
from .launch import CropKernel
from .ring import DeviceRing

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _upload(d, mem: DeviceMemory, a: np.ndarray) -> int:
    ptr = mem.alloc(a.nbytes)
    check(d.cuMemcpyHtoD(ptr, np.ascontiguousarray(a), a.nbytes))
    return ptr


def _download(d, ptr: int, shape, dtype) -> np.ndarray:
    out = np.empty(shape, dtype)
    check(d.cuMemcpyDtoH(out, ptr, out.nbytes))
    return out


def crop_checks(cache_dir=None) -> dict[str, float]:
    """Patches (float32, float16) and glance views of a ring, vs the reference: max |error| each."""
    d, mem = driver(), DeviceMemory()
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (4, 97, 131, 3), np.uint8)
    indices = np.array([0, 3, -1], np.int32)
    centres = np.array([[0, 0], [1, 1], [0.3, 0.6]], np.float32)
    size, box_frac, start = 21, 0.3, 2
    stream = check(d.cuStreamCreate(0))
    try:
        f, i, c = (_upload(d, mem, a) for a in (frames, indices, centres))
        out = {"p32": mem.alloc(3 * 3 * size * size * 4), "p16": mem.alloc(3 * 3 * size * size * 2),
               "g32": mem.alloc(4 * 3 * size * size * 4)}
        with CropKernel(cache_dir=cache_dir) as kernel:
            for name, fp16 in (("p32", False), ("p16", True)):
                kernel.patches(f, frames.shape[:3], i, c, 3, box_frac, out[name], size, MEAN, STD, start=start,
                               swap_rb=True, fp16=fp16, stream=stream)
            kernel.glance(f, frames.shape[:3], out["g32"], size, MEAN, STD, start=start, stream=stream)
            check(d.cuStreamSynchronize(stream))
        ref = R.crop_patches(frames, indices, centres, box_frac, size, MEAN, STD, start=start, swap_rb=True)
        glance = R.glance_views(np.roll(frames, -start, axis=0), size, MEAN, STD)
        p16 = _download(d, out["p16"], ref.shape, np.float16).astype(np.float32)
        return {"patches_f32": float(np.abs(_download(d, out["p32"], ref.shape, np.float32) - ref).max()),
                "patches_f16": float(np.abs(p16 - ref.astype(np.float16).astype(np.float32)).max()),
                "glance_f32": float(np.abs(_download(d, out["g32"], glance.shape, np.float32) - glance).max())}
    finally:
        mem.close()
        d.cuStreamDestroy(stream)


def ring_checks(T: int = 4, snippets: int = 11, item_floats=(16, 64)) -> dict[str, float]:
    """Mirrored feature rings (an unaligned and an aligned slot size) and the frame ring, fed one
    snippet at a time as the TensorRT pipeline feeds them: every window read back, and patches cut
    from the frame ring, vs the host ring. Max |error| per ring (0 when right)."""
    d, mem = driver(), DeviceMemory()
    rng = np.random.default_rng(7)
    stream = check(d.cuStreamCreate(1))
    errors = {}
    try:
        for n_floats in item_floats:
            ring = DeviceRing(mem, T, 4 * n_floats)
            staging, window = mem.alloc(4 * n_floats), mem.alloc(4 * n_floats * T)
            history, worst = [], 0.0
            for n in range(snippets):
                vec = rng.standard_normal(n_floats).astype(np.float32)
                history.append(vec)
                # all on one stream: a copy on another stream could overwrite the staging buffer
                # before the ring's copy from it ran (the emulated GPU catches exactly that)
                if ring.direct:                                  # written in place, then mirrored
                    check(d.cuMemcpyHtoDAsync(ring.slot(n), vec, vec.nbytes, stream))
                    ring.mirror(n, stream)
                else:                                            # written into aligned staging, then copied
                    check(d.cuMemcpyHtoDAsync(staging, vec, vec.nbytes, stream))
                    ring.write(n, staging, stream)
                if n + 1 >= T:
                    ring.read_window((n + 1) % T, window, stream)
                    check(d.cuStreamSynchronize(stream))
                    got = _download(d, window, (T, n_floats), np.float32)
                    worst = max(worst, float(np.abs(got - np.stack(history[-T:])).max()))
            errors[f"features_{4 * n_floats}B{'_aligned' if ring.direct else '_staged'}"] = worst
        frames = DeviceRing(mem, T, 40 * 50 * 3, mirrored=False)
        host = [None] * T
        out = mem.alloc(2 * 3 * 12 * 12 * 4)
        idx, ctr = _upload(d, mem, np.array([0, T - 1], np.int32)), _upload(d, mem, np.array([[0.4, 0.6], [1, 0]], np.float32))
        worst = 0.0
        with CropKernel() as kernel:
            for n in range(snippets):
                img = rng.integers(0, 256, (40, 50, 3), np.uint8)
                host[n % T] = img
                check(d.cuMemcpyHtoDAsync(frames.slot(n), img, img.nbytes, stream))
                if n + 1 >= T:
                    start = (n + 1) % T
                    kernel.patches(frames.base, (T, 40, 50), idx, ctr, 2, 0.3, out, 12, MEAN, STD, start=start,
                                   stream=stream)
                    check(d.cuStreamSynchronize(stream))
                    ref = R.crop_patches(host, np.array([0, T - 1]), np.array([[0.4, 0.6], [1, 0]]), 0.3, 12, MEAN,
                                         STD, start=start)
                    worst = max(worst, float(np.abs(_download(d, out, ref.shape, np.float32) - ref).max()))
        errors["frames_patches"] = worst
        return errors
    finally:
        mem.close()
        d.cuStreamDestroy(stream)


LIMITS = {"patches_f32": 1e-4, "patches_f16": 2e-3, "glance_f32": 1e-4, "frames_patches": 1e-4}


def run_all(cache_dir=None) -> dict[str, tuple[float, bool]]:
    """Every check on device 0's primary context: name -> (max |error|, passed)."""
    ctx = PrimaryContext()
    try:
        with ctx.current():
            results = {**crop_checks(cache_dir), **ring_checks()}
    finally:
        ctx.release()
    return {k: (v, v <= LIMITS.get(k, 0.0)) for k, v in results.items()}


def main() -> int:
    d = driver()
    check(d.cuInit(0))
    name = check(d.cuDeviceGetName(128, check(d.cuDeviceGet(0)))).split(b"\0", 1)[0].decode()
    print(f"device: {name}{' (EMULATED: not a GPU result)' if gpu_emulated() else ''}")
    with tempfile.TemporaryDirectory() as cache:
        results = run_all(cache)
    for k, (err, ok) in results.items():
        print(f"{'ok  ' if ok else 'FAIL'} {k}: max |error| {err:.3g}")
    return 0 if all(ok for _, ok in results.values()) else 1


if __name__ == "__main__":
    from ..deps import start_requested
    start_requested()
    sys.exit(main())
