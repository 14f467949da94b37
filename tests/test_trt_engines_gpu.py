"""Each TensorRT engine alone against ONNX Runtime, at its profile's batch min, opt and max
(pytest -m gpu: on the GPU with TensorRT, on the emulated one elsewhere; skipped, never faked)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from avgn_edge.bundle import PRECISIONS, STAGES, Bundle, load_bundle
from avgn_edge.errors import BundleError, EngineError, MissingDependency
from avgn_edge.trt import build as trt_build
from avgn_edge.trt.build import build_engines



def _require_gpu():
    try:
        trt_build.import_tensorrt()
    except MissingDependency:
        pytest.skip("TensorRT is not installed on this machine (GPU test)")
    try:
        trt_build.device_info()
    except (EngineError, MissingDependency) as exc:
        pytest.skip(f"no CUDA GPU on this machine: {exc}")


def _gpu_bundle(precision: str) -> Bundle:
    name = os.environ.get("AVGN_GPU_TEST_BUNDLE", "synth")
    try:
        bundle = load_bundle(name)
    except BundleError as exc:
        pytest.skip(f"no bundle to build ({exc}); set AVGN_GPU_TEST_BUNDLE")
    if precision not in bundle.precisions:
        pytest.skip(f"bundle {name} has no {precision} variant")
    return bundle


def _check(result):
    err, *rest = result
    assert int(err) == 0, f"CUDA error {err}"
    return rest[0] if rest else None


def run_engine(engine_path: Path, feeds: dict) -> dict:
    """Minimal TensorRT execution with cuda.bindings (the project's runtime does this properly)."""
    from cuda.bindings import driver
    trt = trt_build.import_tensorrt()
    runtime = trt.Runtime(trt_build.trt_logger(trt))           # TensorRT keeps the first logger: use the project's
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    assert engine is not None
    _check(driver.cuInit(0))
    dev = _check(driver.cuDeviceGet(0))
    ctx = _check(driver.cuDevicePrimaryCtxRetain(dev))
    _check(driver.cuCtxSetCurrent(ctx))
    stream = _check(driver.cuStreamCreate(0))
    context = engine.create_execution_context()
    buffers, outputs = [], {}
    io = trt_build.engine_io(trt, engine)
    for name, is_input, _, _ in io:              # the dynamic batch: set before reading output shapes
        if is_input:
            context.set_input_shape(name, feeds[name].shape)
    for name, is_input, _, dtype in io:
        host = (np.ascontiguousarray(feeds[name].astype(dtype)) if is_input
                else np.empty(tuple(context.get_tensor_shape(name)), dtype))
        ptr = _check(driver.cuMemAlloc(max(host.nbytes, 1)))
        buffers.append(ptr)
        if is_input:
            _check(driver.cuMemcpyHtoD(ptr, host.ctypes.data, host.nbytes))
        else:
            outputs[name] = (ptr, host)
        context.set_tensor_address(name, int(ptr))
    assert context.execute_async_v3(int(stream))
    _check(driver.cuStreamSynchronize(stream))
    for ptr, host in outputs.values():
        _check(driver.cuMemcpyDtoH(host.ctypes.data, ptr, host.nbytes))
    for ptr in buffers:
        _check(driver.cuMemFree(ptr))
    _check(driver.cuStreamDestroy(stream))
    del context                                  # before the context's memory goes with the retain
    _check(driver.cuDevicePrimaryCtxRelease(dev))
    return {name: host for name, (ptr, host) in outputs.items()}


def _feeds(spec, rng, num_snippets: int, batch: int = 1) -> dict:
    feeds = {}
    for t in spec.inputs:
        if t.dtype.startswith("int"):                      # snippet indices: distinct within an item
            feeds[t.name] = np.stack([rng.choice(num_snippets, size=t.shape[1:], replace=False)
                                      for _ in range(batch)]).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(t.at(batch)).astype(t.dtype)
    return feeds


TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "int8": 1.5e-1}        # relative to the output's scale


@pytest.mark.gpu
@pytest.mark.parametrize("precision", PRECISIONS)
def test_engines_match_onnxruntime_at_batch_min_opt_max(precision, tmp_path):
    """Each engine alone, at its profile's min, opt and max batch, against ONNX Runtime on the same variant."""
    _require_gpu()
    from avgn_edge.runtime.ort import OrtBackend
    bundle = _gpu_bundle(precision)
    paths = build_engines(bundle, precision, tmp_path / "engines")
    reference = OrtBackend(bundle, precision, tensorrt_graph=True)        # the graph the engines are built from
    rng = np.random.default_rng(0)
    for path, stage in zip(paths, STAGES):
        spec = bundle.stages[stage]
        for batch in sorted({spec.batch.min, spec.batch.opt, spec.batch.max}):
            feeds = _feeds(spec, rng, bundle.config.num_snippets, batch)
            want = reference.run(stage, feeds)
            got = run_engine(path, feeds)
            for name, ref in want.items():
                assert got[name].shape == ref.shape == spec_out(spec, name).at(batch), (stage, name, batch)
                if ref.dtype.kind in "iub":
                    if precision == "fp32":                              # top-k ties may flip at lower precision
                        np.testing.assert_array_equal(got[name], ref, err_msg=f"{stage}/{name} batch {batch}")
                    continue
                scale = max(float(np.abs(ref).max()), 1e-3)
                err = float(np.abs(got[name].astype(np.float64) - ref).max()) / scale
                assert err <= TOLERANCE[precision], f"{stage}/{name} {precision} batch {batch}: relative error {err:.3g}"


def spec_out(spec, name):
    return next(t for t in spec.outputs if t.name == name)
