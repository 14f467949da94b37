"""The crop-resize kernel: NVRTC builds, host build vs the NumPy reference and the PyTorch
training views, the cuda-python API names we use, and (on a GPU only) the device launch."""

from __future__ import annotations

import ast
import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avgn_edge.errors import MissingDependency
from avgn_edge.kernels import compile as kc
from avgn_edge.kernels import reference as R
from avgn_edge.kernels.host import crop_resize_host
from avgn_edge.kernels.launch import CropArgs

ROOT = Path(__file__).resolve().parents[2]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _nvrtc_or_skip():
    try:
        kc.nvrtc_version()
    except MissingDependency as exc:
        pytest.skip(f"cuda.bindings / NVRTC not importable: {exc}")


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    """One kernel cache for the session (host .so built once), never the user's ~/.cache."""
    return tmp_path_factory.mktemp("kernel-cache")


# ---------------------------------------------------------------- NVRTC

@pytest.mark.parametrize("arch", ["87", "89", "90", "110"])
def test_nvrtc_cubin(arch, cache):
    _nvrtc_or_skip()
    if arch == "110" and kc.nvrtc_version()[0] < 13:
        pytest.skip("sm_110 (Thor) needs NVRTC 13: JetPack 7, the cuda13 extra")
    cubin = kc.compile_cubin(arch, cache_dir=cache)
    assert cubin[:4] == b"\x7fELF" and len(cubin) > 4096
    assert all(name.encode() in cubin for name in kc.KERNEL_NAMES)


def test_nvrtc_cache(tmp_path):
    _nvrtc_or_skip()
    before = kc.compile_count
    first = kc.compile_cubin("sm_87", cache_dir=tmp_path)
    assert kc.compile_count == before + 1
    (cached,) = tmp_path.glob("*.cubin")
    mtime = cached.stat().st_mtime_ns
    assert kc.compile_cubin(87, cache_dir=tmp_path) == first          # same key for "sm_87" and 87
    assert kc.compile_count == before + 1 and cached.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))                          # temp file renamed away


def test_nvrtc_error_has_log(tmp_path):
    _nvrtc_or_skip()
    bad = tmp_path / "bad.cu"
    bad.write_text('extern "C" __global__ void f() { undeclared_thing(); }\n')
    with pytest.raises(kc.KernelCompileError, match="undeclared_thing"):
        kc.compile_cubin("87", bad, use_cache=False)


def test_missing_headers_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kc.os.path, "isfile", lambda p: False)
    with pytest.raises(MissingDependency) as info:
        kc.cuda_include_dir()
    assert "cuda_fp16.h" in str(info.value) and "CUDA_HOME" in info.value.hint


def test_imports_without_cuda_python():
    code = ("import sys; sys.modules['cuda'] = None\n"
            "import avgn_edge.kernels.compile, avgn_edge.kernels.launch, avgn_edge.kernels.host as h\n"
            "from avgn_edge.errors import MissingDependency\n"
            "try:\n    avgn_edge.kernels.compile.nvrtc_version()\nexcept MissingDependency: print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_cuda_python_names_exist():
    """Every driver./nvrtc./runtime. attribute (chain) used in our sources exists in the
    installed cuda.bindings: the device paths cannot run here, so check them statically."""
    try:
        from cuda.bindings import driver, nvrtc, runtime
    except ImportError as exc:
        pytest.skip(f"cuda.bindings not importable: {exc}")
    modules = {"driver": driver, "nvrtc": nvrtc, "runtime": runtime, "cudart": runtime}
    used = set()
    for path in ("avgn_edge/kernels/compile.py", "avgn_edge/kernels/launch.py", "avgn_edge/kernels/cuda_driver.py",
                 "avgn_edge/kernels/ring.py", "avgn_edge/kernels/selftest.py", "avgn_edge/runtime/trt.py",
                 "avgn_edge/runtime/trt_pipeline.py", "avgn_edge/runtime/backend.py", "avgn_edge/trt/build.py",
                 "tests/kernels/test_kernels.py"):
        text = (ROOT / path).read_text()
        # ``runtime`` names cuda.bindings.runtime only where that is imported (TensorRT code
        # uses the name for trt.Runtime, checked against TensorRT's names in test_trt.py)
        roots = set(modules) if "import runtime" in text else set(modules) - {"runtime"}
        for node in ast.walk(ast.parse(text)):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.insert(0, node.attr)
                node = node.value
            if chain and isinstance(node, ast.Name) and node.id == "self" and chain[0] == "driver":
                node, chain = ast.Name("driver"), chain[1:]          # self.driver.cuX
            if chain and isinstance(node, ast.Name) and node.id == "d":
                node = ast.Name("driver")                            # d = driver() in kernels/
            if chain and isinstance(node, ast.Name) and node.id in roots:
                used.add((node.id, *chain))
    assert {("driver", "cuLaunchKernel"), ("nvrtc", "nvrtcGetCUBIN")} <= {u[:2] for u in used}
    for root, *chain in sorted(used):
        obj = modules[root]
        for i, name in enumerate(chain):
            assert hasattr(obj, name), f"{root}.{'.'.join(chain[:i + 1])} missing from cuda.bindings"
            obj = getattr(obj, name)


# ---------------------------------------------------------------- host build vs reference

def test_args_layout():
    assert ctypes.sizeof(CropArgs) == 96    # the .cu static_asserts the same on the C side


def _frames(rng, t, h, w):
    return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _expected(frames, indices, centres, box_frac, out_h, out_w, start=0, swap_rb=False, whole_frame=False):
    t, h, w = frames.shape[:3]
    if whole_frame:
        indices = range(t) if indices is None else indices
        boxes = [(0.0, 0.0, float(w), float(h))] * len(indices)
    else:
        boxes = [R.patch_box(c, box_frac, h, w) for c in centres]
    return np.stack([R.crop_resize(frames[(start + int(i)) % t], b, out_h, out_w, MEAN, STD, swap_rb=swap_rb,
                                   dtype=np.float64) for i, b in zip(indices, boxes)])


PATCH_CASES = {   # frames (T, H, W), box_frac, out (h, w), start, swap_rb
    "odd-nonsquare-edges": ((5, 97, 131), 0.3, (17, 17), 2, True),
    "rect-output": ((3, 97, 131), 0.45, (23, 11), 0, False),
    "upscale": ((4, 97, 131), 0.05, (21, 21), 3, False),
    "large-frame": ((2, 480, 640), 0.2, (32, 32), 1, True),
}


@pytest.mark.parametrize("case", PATCH_CASES, ids=list(PATCH_CASES))
@pytest.mark.parametrize("fp16", [False, True], ids=["f32", "f16"])
def test_host_patches_match_reference(case, fp16, cache):
    (t, h, w), box_frac, (oh, ow), start, swap_rb = PATCH_CASES[case]
    rng = np.random.default_rng(len(case))
    frames = _frames(rng, t, h, w)
    centres = np.concatenate([[[0, 0], [1, 1], [0, 1], [0.5, 0.5]], rng.random((3, 2))]).astype(np.float32)
    indices = np.array([0, t - 1, -1, 1, 2 * t + 1, 0, t // 2], np.int32)   # wraps around the ring
    got = crop_resize_host(frames, indices, centres, box_frac, oh, ow, MEAN, STD, start=start, swap_rb=swap_rb,
                           fp16=fp16, cache_dir=cache)
    ref = _expected(frames, indices, centres, box_frac, oh, ow, start, swap_rb)
    assert got.shape == (7, 3, oh, ow) and got.dtype == (np.float16 if fp16 else np.float32)
    if fp16:
        np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float16).astype(np.float32), rtol=0, atol=2e-3)
    else:
        assert np.abs(got - ref).max() <= 1e-4
    if case == "odd-nonsquare-edges" and not fp16:   # the documented reference entry point agrees too
        np.testing.assert_allclose(got, R.crop_patches(frames, indices, centres, box_frac, oh, MEAN, STD, start=start,
                                                      swap_rb=swap_rb), rtol=0, atol=1e-4)


GLANCE_CASES = {   # frames (T, H, W), out (h, w), start, swap_rb
    "downscale-480x640-to-32": ((2, 480, 640), (32, 32), 0, False),
    "odd-nonsquare": ((3, 97, 131), (15, 19), 1, True),
    "upscale": ((2, 20, 30), (41, 37), 1, False),
}


@pytest.mark.parametrize("case", GLANCE_CASES, ids=list(GLANCE_CASES))
@pytest.mark.parametrize("fp16", [False, True], ids=["f32", "f16"])
def test_host_glance_matches_reference(case, fp16, cache):
    (t, h, w), (oh, ow), start, swap_rb = GLANCE_CASES[case]
    frames = _frames(np.random.default_rng(7), t, h, w)
    got = crop_resize_host(frames, None, None, 0.0, oh, ow, MEAN, STD, start=start, swap_rb=swap_rb,
                           whole_frame=True, fp16=fp16, cache_dir=cache)
    ref = _expected(frames, None, None, 0.0, oh, ow, start, swap_rb, whole_frame=True)
    if fp16:
        np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float16).astype(np.float32), rtol=0, atol=2e-3)
    else:
        assert np.abs(got - ref).max() <= 1e-4
    if oh == ow and start == 0 and not fp16:
        np.testing.assert_allclose(got, R.glance_views(frames, oh, MEAN, STD, swap_rb=swap_rb), rtol=0, atol=1e-4)


# ---------------------------------------------------------------- vs the PyTorch training views

# torch builds the patch grid in float32 normalised [-1, 1] coordinates: ~1e-5 px of error
# at 224 px, i.e. ~1.3e-4 after normalisation on noise frames (the kernel is within 1e-6 of
# the float64 reference), hence the looser tolerance for the larger frames.
@pytest.mark.parametrize("preset, atol", [("tiny", 1e-5), ("synth", 1e-5), ("paper", 4e-4)])
def test_host_matches_training_views(preset, atol, cache):
    torch = pytest.importorskip("torch", reason="torch not installed")
    from avgn_edge.config import get_preset
    from avgn_edge.model import views
    cfg = get_preset(preset)
    s, p, g = cfg.frame_size, cfg.patch_size, cfg.glance_size
    rng = np.random.default_rng(3)
    frames = _frames(rng, 3, s, s)
    centres = np.concatenate([[[0, 0], [1, 1]], rng.random((1, 2))]).astype(np.float32)
    want = views.crop_patches(views.to_float(torch.from_numpy(frames), cfg.mean, cfg.std),
                              torch.from_numpy(centres), p).numpy()
    got = crop_resize_host(frames, np.arange(3), centres, p / s, p, p, cfg.mean, cfg.std, cache_dir=cache)
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    want = views.glance_view(torch.from_numpy(frames), g, cfg.mean, cfg.std).numpy()
    got = crop_resize_host(frames, None, None, 0.0, g, g, cfg.mean, cfg.std, whole_frame=True, cache_dir=cache)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- on the device

def _cuda_device_or_skip(driver):
    try:
        (err,) = driver.cuInit(0)
        err2, count = driver.cuDeviceGetCount() if err == driver.CUresult.CUDA_SUCCESS else (err, 0)
    except Exception as exc:   # no libcuda at all: cuda-pathfinder raises DynamicLibNotFoundError
        pytest.skip(f"no CUDA device (driver not loadable: {type(exc).__name__})")
    if err != driver.CUresult.CUDA_SUCCESS or count < 1:
        pytest.skip(f"no CUDA device (cuInit: {err}, devices: {count})")


@pytest.mark.gpu
def test_crop_kernel_and_device_rings_on_device(tmp_path):
    """``python -m avgn_edge.kernels.selftest``, the same code: the crop kernel (patches f32/f16, glance)
    and the device rings (mirrored feature rings, aligned and staged; the frame ring) vs the reference."""
    driver = pytest.importorskip("cuda.bindings.driver", reason="cuda.bindings not installed")
    _cuda_device_or_skip(driver)
    _nvrtc_or_skip()
    from avgn_edge.kernels.selftest import run_all
    results = run_all(tmp_path)
    assert {"patches_f32", "patches_f16", "glance_f32", "features_64B_staged", "features_256B_aligned",
            "frames_patches"} <= set(results)
    assert all(ok for _, ok in results.values()), results


def test_selftest_command_runs_on_the_emulated_gpu():
    res = subprocess.run([sys.executable, "-m", "avgn_edge.kernels.selftest"], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "AVGN_EMULATE_GPU": "1"})
    if "NVRTC" in res.stderr and res.returncode:
        pytest.skip("NVRTC unavailable")
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert res.stdout.startswith("device: avgn-edge emulated GPU (EMULATED") and res.stdout.count("ok ") == 6


def test_cuda_extras_pin_the_cuda_major():
    """cuda-bindings 13 needs a CUDA 13 driver (>= 580); JetPack 6 is CUDA 12.6: one extra per major."""
    from packaging.requirements import Requirement
    text = (ROOT / "setup.py").read_text()
    scope: dict = {}
    exec(text.split("EXTRAS = {")[0].split("# CUDA from Python")[1].split("\n", 1)[1], {}, scope)
    for extra, major in (("CUDA12", 12), ("CUDA13", 13)):
        reqs = [Requirement(r) for r in scope[extra]]
        bindings = next(r for r in reqs if r.name == "cuda-bindings")
        assert bindings.specifier.contains(f"{major}.9") and not bindings.specifier.contains(f"{major + 1}.0")
        assert not bindings.specifier.contains(f"{major - 1}.9")
        wheels = [r for r in reqs if r.name.startswith("nvidia-")]
        assert wheels and all(r.name.endswith("-cu12") == (major == 12) for r in wheels)
        assert all(r.specifier.contains(f"{major}.9") and not r.specifier.contains(f"{major + 1}.0") for r in wheels)
        assert all("x86_64" in str(r.marker) for r in wheels)       # Jetson: NVRTC and headers come with JetPack


def test_batched_patch_crop_equals_the_per_ring_reference():
    """crop_patches_batch (B windows, frame sizes mixed, centres near and past the edges) gives
    crop_patches' numbers for every ring."""
    rng = np.random.default_rng(3)
    B, T, k = 6, 5, 3
    sizes = [(128, 128), (480, 640), (128, 128), (97, 131), (128, 128), (480, 640)]
    rings = [[rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(T)] for h, w in sizes]
    starts = rng.integers(0, T, B)
    indices = np.stack([rng.choice(T, k, replace=False) for _ in range(B)]).astype(np.int32)
    centres = rng.uniform(-0.2, 1.2, (B, k, 2)).astype(np.float32)
    got = R.crop_patches_batch(rings, starts, indices, centres, 0.25, 32, MEAN, STD)
    for i, ring in enumerate(rings):
        want = R.crop_patches(ring, indices[i], centres[i], 0.25, 32, MEAN, STD, start=int(starts[i]))
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("swap_rb", [False, True], ids=["rgb", "bgr"])
def test_glance_views_are_crop_resize_of_the_whole_frame(swap_rb):
    """The vectorised glance view (frames of mixed sizes, grouped; rows then columns as two BLAS
    products on the HWC frames) is, per frame, ``crop_resize`` with the full-frame box: the
    definition the kernel and training share."""
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in
              ((128, 128), (97, 131), (128, 128), (20, 30), (32, 32), (360, 640))]
    got = R.glance_views(frames, 32, MEAN, STD, swap_rb=swap_rb)
    want = np.stack([R.crop_resize(f, (0.0, 0.0, float(f.shape[1]), float(f.shape[0])), 32, 32, MEAN, STD,
                                   swap_rb=swap_rb) for f in frames])
    assert got.shape == (6, 3, 32, 32) and np.abs(got - want).max() <= 1e-5
    half = R.glance_views(np.stack(frames[:1] * 3), 32, MEAN, STD, swap_rb=swap_rb, dtype=np.float16)
    assert half.dtype == np.float16 and np.abs(half.astype(np.float32) - want[0]).max() <= 2e-3
