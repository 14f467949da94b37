"""The emulated TensorRT refuses what TensorRT refuses: one test per rule (avgn_edge/emulator/tensorrt.py)."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from avgn_edge.emulator import tensorrt as emu_trt

NAMES = Path(__file__).resolve().parents[1] / "data" / "tensorrt-python-names"
pytest.importorskip("cuda.bindings.driver", reason="the emulator reuses cuda-bindings' types")


class Collect:
    """A TensorRT logger subclass that keeps every message."""

    def __init__(self, trt):
        outer = self

        class L(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, msg):
                outer.messages.append((severity, msg))
        self.messages, self.logger = [], L()

    def errors(self):
        return [m for s, m in self.messages if s <= emu_trt.Severity.ERROR]


def _onnx(batch="2", op="Relu", opset=17) -> bytes:
    dim = int(batch) if batch.isdigit() else batch
    nodes = [helper.make_node("Add", ["x", "x"], ["t"], name="add"), helper.make_node(op, ["t"], ["y"], name="act")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dim, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


@pytest.fixture
def trt(emulated_gpu):
    return emu_trt.module()                  # a fresh TensorRT: its own process-wide logger


def _build(trt, model: bytes, logger, flags=(), profile=None):
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    for f in flags:
        config.set_flag(f)
    if profile:
        p = builder.create_optimization_profile()
        p.set_shape("x", *profile)
        config.add_optimization_profile(p)
    return builder.build_serialized_network(network, config)


def test_the_first_logger_is_the_process_wide_one(trt):
    first, second = Collect(trt), Collect(trt)
    trt.Builder(first.logger)
    trt.Runtime(second.logger).deserialize_cuda_engine(b"garbage" * 20)
    assert second.messages == [] and any("Magic tag" in m for m in first.errors())
    assert any("differs from one already provided" in m for _, m in first.messages)


def test_the_parser_refuses_what_onnx_tensorrt_lacks(trt):
    log = Collect(trt)
    network = trt.Builder(log.logger).create_network(0)
    parser = trt.OnnxParser(network, log.logger)
    assert parser.parse(_onnx(op="Det")) is False and parser.num_errors == 1
    err = parser.get_error(0)
    assert (err.node(), err.node_name(), err.node_operator(), err.code()) == (1, "act", "Det",
                                                                             trt.ErrorCode.UNSUPPORTED_NODE)
    assert "No importer registered for op: Det" in err.desc()
    parser.clear_errors()
    assert parser.num_errors == 0 and parser.parse(_onnx(opset=23)) is False


def test_strongly_typed_networks_refuse_precision_flags(trt, emulated_gpu):
    log = Collect(trt)
    assert _build(trt, _onnx(), log.logger, flags=[trt.BuilderFlag.FP16]) is None
    assert any("strongly typed" in m for m in log.errors())
    assert _build(trt, _onnx(), log.logger) is not None
    eleven = emu_trt.module("11.4.0.106")                    # TensorRT 11 removed the weak-typing names
    assert not hasattr(eleven.BuilderFlag, "FP16") and not hasattr(eleven.BuilderFlag, "INT8")
    assert not hasattr(eleven.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert hasattr(trt.Builder(log.logger), "platform_has_fast_fp16")
    assert not hasattr(eleven.Builder(Collect(eleven).logger), "platform_has_fast_fp16")


def test_a_plan_deserializes_only_on_its_tensorrt_and_gpu(trt, monkeypatch):
    log = Collect(trt)
    plan = bytes(_build(trt, _onnx(), log.logger))
    assert plan[:4] == b"ftrt" and tuple(plan[24:28]) == (10, 3, 0, 0)        # trtexec --getPlanVersionOnly
    assert trt.Runtime(log.logger).deserialize_cuda_engine(plan) is not None
    other = emu_trt.module("10.3.1")
    olog = Collect(other)
    assert other.Runtime(olog.logger).deserialize_cuda_engine(plan) is None
    assert any("Version tag does not match" in m for m in olog.errors())
    corrupt = plan[:-10] + bytes(10)
    assert trt.Runtime(log.logger).deserialize_cuda_engine(corrupt) is None
    from avgn_edge.emulator.device import STATE
    monkeypatch.setattr(STATE.device, "cc", (8, 9))
    assert trt.Runtime(log.logger).deserialize_cuda_engine(plan) is None
    assert any("incompatible device" in m for m in log.errors())


def _engine(trt, log, model=None, profile=None):
    plan = _build(trt, model or _onnx(), log.logger, profile=profile)
    return trt.Runtime(log.logger).deserialize_cuda_engine(plan)


@pytest.fixture
def cuda(emulated_gpu):
    from cuda.bindings import driver as d
    d.cuInit(0)
    ctx = d.cuDevicePrimaryCtxRetain(0)[1]
    d.cuCtxPushCurrent(ctx)
    yield d
    d.cuCtxPopCurrent()
    d.cuDevicePrimaryCtxRelease(0)


def _buffers(d, n=2):
    return [int(d.cuMemAlloc(n * 16)[1]) for _ in range(2)]


def test_engine_io_and_binding_rules(trt, cuda):
    log = Collect(trt)
    engine = _engine(trt, log)
    assert [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)] == ["x", "y"]
    assert engine.get_tensor_mode("x") == trt.TensorIOMode.INPUT and str(engine.get_tensor_dtype("y")) == "DataType.FLOAT"
    assert tuple(engine.get_tensor_shape("y")) == (2, 4)
    context = engine.create_execution_context()
    x, y = _buffers(cuda)
    assert context.set_tensor_address("nope", x) is False
    assert context.set_tensor_address("x", x + 64) is False and "aligned" in log.errors()[-1]
    assert context.set_tensor_address("x", x) is True
    s = cuda.cuStreamCreate(1)[1]
    assert context.execute_async_v3(int(s)) is False and "y" in log.errors()[-1]       # y unbound
    assert context.set_tensor_address("y", y)
    assert context.execute_async_v3(int(s)) is True
    shared = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
    for name, ptr in (("x", x), ("y", y)):
        shared.set_tensor_address(name, ptr)
    if engine.device_memory_size_v2:
        assert shared.execute_async_v3(int(s)) is False                 # no scratch given yet
        shared.set_device_memory(int(cuda.cuMemAlloc(engine.device_memory_size_v2)[1]), engine.device_memory_size_v2)
    assert shared.execute_async_v3(int(s)) is True
    cuda.cuStreamSynchronize(s)


def test_engines_run_in_stream_order_and_capture_after_a_warm_up(trt, cuda):
    log = Collect(trt)
    engine = _engine(trt, log)
    context = engine.create_execution_context()
    x, y = _buffers(cuda)
    hp = cuda.cuMemHostAlloc(32, 0)[1]
    host = np.frombuffer((ctypes.c_float * 8).from_address(hp), np.float32)
    s = cuda.cuStreamCreate(1)[1]
    for name, ptr in (("x", x), ("y", y)):
        context.set_tensor_address(name, ptr)
    cuda.cuStreamBeginCapture(s, cuda.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
    assert context.execute_async_v3(int(s)) is False                    # first enqueue: setup work, not capturable
    assert cuda.cuStreamEndCapture(s)[0] == cuda.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    from avgn_edge.kernels.cuda_driver import clear_runtime_error
    clear_runtime_error()                                               # cudart's error, as trtexec clears it
    cuda.cuMemcpyHtoD(x, np.arange(-4, 4, dtype=np.float32), 32)
    assert context.execute_async_v3(int(s)) is True                     # warm-up
    cuda.cuMemcpyDtoHAsync(hp, y, 32, s)
    assert not host.any()                                               # queued, not run
    cuda.cuStreamSynchronize(s)
    np.testing.assert_array_equal(host, np.maximum(0, 2 * np.arange(-4, 4)))
    cuda.cuStreamBeginCapture(s, cuda.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
    assert context.execute_async_v3(int(s)) is True
    cuda.cuMemcpyDtoHAsync(hp, y, 32, s)
    err, graph = cuda.cuStreamEndCapture(s)
    exe = cuda.cuGraphInstantiate(graph, 0)[1]
    cuda.cuMemcpyHtoD(x, np.full(8, 3, np.float32), 32)
    host[:] = 0
    cuda.cuGraphLaunch(exe, s)
    cuda.cuStreamSynchronize(s)
    assert (host == 6).all()


def test_dynamic_inputs_need_a_profile(trt, cuda):
    log = Collect(trt)
    model = _onnx(batch="batch")
    assert _build(trt, model, log.logger) is None and "optimization profile" in log.errors()[-1]
    engine = _engine(trt, log, model, profile=([1, 4], [2, 4], [8, 4]))
    assert tuple(engine.get_tensor_shape("x")) == (-1, 4)
    assert [tuple(d) for d in engine.get_tensor_profile_shape("x", 0)] == [(1, 4), (2, 4), (8, 4)]
    context = engine.create_execution_context()
    assert context.set_input_shape("x", (9, 4)) is False
    x, y = _buffers(cuda, 3)
    for name, ptr in (("x", x), ("y", y)):
        context.set_tensor_address(name, ptr)
    s = cuda.cuStreamCreate(1)[1]
    assert context.execute_async_v3(int(s)) is False                    # input shape not set
    assert context.set_input_shape("x", (3, 4)) and tuple(context.get_tensor_shape("y")) == (3, 4)
    assert context.execute_async_v3(int(s)) is True
    assert cuda.cuStreamSynchronize(s)[0] == cuda.CUresult.CUDA_SUCCESS


def test_tensorrt_makes_the_primary_context_current_but_the_driver_does_not(trt, cuda):
    """TensorRT goes through cudart, which makes the primary context current on a thread with none;
    a driver call on such a thread still fails (the reason `live --backend trt` needed a fix)."""
    log = Collect(trt)
    engine = _engine(trt, log)
    seen = []

    def other():
        seen.append(cuda.cuMemAlloc(16)[0])
        engine.create_execution_context()
        seen.append(cuda.cuMemAlloc(16)[0])
        cuda.cuCtxSetCurrent(0)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [cuda.CUresult.CUDA_ERROR_INVALID_CONTEXT, cuda.CUresult.CUDA_SUCCESS]


def _public_names(mod) -> set[str]:
    names = set()
    for name, value in vars(mod).items():
        if name.startswith("_") or name in ("EMULATED",):
            continue
        names.add(name)
        if isinstance(value, type):
            names |= {n for n in vars(value) if not n.startswith("_") and n not in ("mro",)}
            if issubclass(value, emu_trt._Enum):
                names |= set(value.__members__)
    return names


@pytest.mark.parametrize("version", ["10.3.0", "11.4.0.106"])
def test_every_emulated_name_exists_in_that_tensorrt(version):
    """The stand-in offers no name the real bindings lack (names from tensorrt_bindings/tensorrt.so)."""
    listed = (NAMES / f"{version}.txt").read_text().split()
    exact = set(listed)
    mod = emu_trt.module(version)
    from avgn_edge.emulator import trt_build, trt_engine
    ours = _public_names(mod)
    for cls in (trt_build.Builder, trt_build.OnnxParser, trt_engine.Runtime):
        ours |= {n for n in vars(cls) if not n.startswith("_")}
    internal = {"Lib", "module", "tensor_meta", "make_session", "lib", "io", "session", "errors", "model",
                "inputs", "outputs", "strongly_typed", "shapes", "valid", "owner", "entries", "MAGIC", "profiles",
                "timing_cache", "addresses", "scratch", "ctx", "strategy", "engine", "network", "logger", "adopt",
                "error", "major", "version"}
    internal |= {"DataType"}     # in every TensorRT (tensorrt.DataType), but the lists lost it to a C++ symbol
    missing = sorted(n for n in ours - internal if n not in exact and not any(s.endswith(n) for s in listed))
    assert not missing, missing
