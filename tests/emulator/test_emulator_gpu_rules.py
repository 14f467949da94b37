"""The emulator's second-review rules (avgn_edge/emulator/trt_rules.py, trt_qdq.py), each shown refusing.

Cases that lose the emulated context (a refused graph replay is an illegal address) run in a
subprocess: the primary context stays unusable for the rest of a process, as on a device.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from avgn_edge.emulator import tensorrt as emu_trt

pytest.importorskip("cuda.bindings.driver", reason="the emulator reuses cuda-bindings' types")
ROOT = Path(__file__).resolve().parents[2]


class Log:
    def __init__(self, trt):
        outer, self.messages = self, []

        class L(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, msg):
                outer.messages.append(msg)
        self.logger = L()


def _model(batch, nodes=None, inits=(), inputs=None) -> bytes:
    nodes = nodes or [helper.make_node("Relu", ["x"], ["y"], name="act")]
    g = helper.make_graph(nodes, "g", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _engine(trt, log, model, profiles=()):
    builder = trt.Builder(log.logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse(model):
        return parser
    config = builder.create_builder_config()
    for lo, opt, hi in profiles:
        p = builder.create_optimization_profile()
        p.set_shape("x", (lo, 4), (opt, 4), (hi, 4))
        config.add_optimization_profile(p)
    return trt.Runtime(log.logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))


@pytest.fixture
def trt(emulated_gpu):
    return emu_trt.module()


@pytest.fixture
def cuda(emulated_gpu):
    from cuda.bindings import driver as d
    d.cuInit(0)
    d.cuCtxPushCurrent(d.cuDevicePrimaryCtxRetain(0)[1])
    yield d
    d.cuCtxPopCurrent()
    d.cuDevicePrimaryCtxRelease(0)


def _run(script: str) -> list[str]:
    prelude = textwrap.dedent("""
        import gc, numpy as np
        from avgn_edge import emulator
        emulator.activate()
        from cuda.bindings import driver as d
        from avgn_edge.emulator import tensorrt as emu_trt, trt_rules
        from test_emulator_gpu_rules import Log, _model, _engine
        trt = emu_trt.module(); log = Log(trt)
        d.cuInit(0); d.cuCtxPushCurrent(d.cuDevicePrimaryCtxRetain(0)[1])
        s = d.cuStreamCreate(1)[1]
        x, y, y2 = (int(d.cuMemAlloc(32)[1]) for _ in range(3))
        engine = _engine(trt, log, _model(2))
        ctx = engine.create_execution_context()
        ctx.set_tensor_address("x", x); ctx.set_tensor_address("y", y)
        ctx.execute_async_v3(int(s)); d.cuStreamSynchronize(s)            # warm-up
        d.cuStreamBeginCapture(s, d.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        ctx.execute_async_v3(int(s))
        g = d.cuStreamEndCapture(s)[1]; exe = d.cuGraphInstantiate(g, 0)[1]
    """)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'emulator'}"}
    env.pop("AVGN_EMULATE_GPU", None)
    res = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split()


def test_a_graph_replayed_after_its_context_was_rebound_is_refused():
    out = _run("""
        d.cuMemcpyHtoD(x, np.arange(-4, 4, dtype=np.float32), 32)
        print(d.cuGraphLaunch(exe, s)[0].name, d.cuStreamSynchronize(s)[0].name)       # as captured: fine
        ctx.set_tensor_address("y", y2); ctx.set_tensor_address("y", y)                  # re-bound as captured
        print(d.cuGraphLaunch(exe, s)[0].name, d.cuStreamSynchronize(s)[0].name)
        ctx.set_tensor_address("y", y2)                                                  # another address
        print(d.cuGraphLaunch(exe, s)[0].name, d.cuStreamSynchronize(s)[0].name)
    """)
    assert out == ["CUDA_SUCCESS"] * 4 + ["CUDA_SUCCESS", "CUDA_ERROR_ILLEGAL_ADDRESS"]


def test_destroying_a_context_while_a_graph_uses_it_is_a_violation():
    out = _run("""
        del ctx; gc.collect()
        print(len(trt_rules.VIOLATIONS), "destroyed" in trt_rules.VIOLATIONS[0])
        print(d.cuGraphLaunch(exe, s)[0].name, d.cuStreamSynchronize(s)[0].name)
    """)
    assert out == ["1", "True", "CUDA_SUCCESS", "CUDA_ERROR_ILLEGAL_ADDRESS"]


def test_no_violation_when_the_graph_goes_first():
    out = _run("""
        d.cuGraphExecDestroy(exe); d.cuGraphDestroy(g)
        del ctx; gc.collect()
        print(len(trt_rules.VIOLATIONS))
    """)
    assert out == ["0"]


def test_optimization_profiles_are_per_context(trt, cuda):
    log = Log(trt)
    engine = _engine(trt, log, _model("n"), profiles=[(1, 1, 2), (3, 4, 4)])
    s, s2 = cuda.cuStreamCreate(1)[1], cuda.cuStreamCreate(1)[1]
    x, y = (int(cuda.cuMemAlloc(64)[1]) for _ in range(2))
    a, b = engine.create_execution_context(), engine.create_execution_context()
    assert a.active_optimization_profile == 0 and b.active_optimization_profile == 0
    assert a.set_input_shape("x", (4, 4)) is False                      # outside profile 0
    assert a.set_optimization_profile_async(1, int(s)) is True and a.active_optimization_profile == 1
    assert a.set_input_shape("x", (4, 4)) is True and b.set_input_shape("x", (4, 4)) is False
    assert a.set_optimization_profile_async(2, int(s)) is False and "profileIndex" in log.messages[-1]
    for c in (a, b):
        c.set_tensor_address("x", x)
        c.set_tensor_address("y", y)
    assert a.set_optimization_profile_async(0, int(s)) is True
    assert a.execute_async_v3(int(s)) is False and "outside optimization profile 0" in log.messages[-1]
    assert a.set_input_shape("x", (2, 4)) and b.set_input_shape("x", (2, 4))
    assert a.execute_async_v3(int(s)) is True                           # pending on s
    assert b.execute_async_v3(int(s2)) is False and "separate optimization profile" in log.messages[-1]
    assert b.execute_async_v3(int(s)) is True                           # same stream: one after another
    cuda.cuStreamSynchronize(s)
    assert b.execute_async_v3(int(s2)) is True                          # a's work is done
    cuda.cuStreamSynchronize(s2)
    cuda.cuStreamBeginCapture(s, cuda.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
    assert a.set_optimization_profile_async(1, int(s)) is False          # enqueues work: not during capture
    assert cuda.cuStreamEndCapture(s)[0] == cuda.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    for p in (x, y):
        cuda.cuMemFree(p)
    for h in (s, s2):
        cuda.cuStreamDestroy(h)


def test_no_profile_is_three_invalid_dims_as_tensorrt_returns(trt, cuda):
    engine = _engine(trt, Log(trt), _model(2))
    shapes = engine.get_tensor_profile_shape("x", 0)
    assert len(shapes) == 3
    with pytest.raises(ValueError):
        len(shapes[2])
    with pytest.raises(IndexError):
        shapes[2][0]


def _qdq(zero_point=0, scale_input=False, per_channel_on="", zp_type=TensorProto.INT8):
    scale = np.full(4, 0.1, np.float32) if per_channel_on else np.float32(0.1)
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             helper.make_tensor("zp", zp_type, list(np.shape(scale)), np.full(np.shape(scale), zero_point).ravel())]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])]
    if scale_input:
        inits = inits[1:]
        inputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, []))
    axis = {"axis": 1} if per_channel_on else {}
    if per_channel_on == "weights":
        inits.append(numpy_helper.from_array(np.ones((4, 4), np.float32), "w"))
        nodes = [helper.make_node("QuantizeLinear", ["w", "s", "zp"], ["wq"], name="qw", axis=1),
                 helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["wd"], name="dqw", axis=1),
                 helper.make_node("MatMul", ["x", "wd"], ["y"], name="mm")]
    else:
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q", **axis),
                 helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq", **axis)]
    return _model(2, nodes, inits, inputs)


@pytest.mark.parametrize("case, refused", [
    ({}, None),
    ({"per_channel_on": "weights"}, None),
    ({"zero_point": 3}, "zero point 'zp' is not 0"),
    ({"scale_input": True}, "not a build-time constant"),
    ({"per_channel_on": "activations"}, "per-channel"),
], ids=["per-tensor", "per-channel-weights", "zero-point", "scale-input", "per-channel-activations"])
def test_qdq_rules(trt, cuda, case, refused):
    log = Log(trt)
    got = _engine(trt, log, _qdq(**case))
    if refused is None:
        assert got is not None and not isinstance(got, trt.OnnxParser), log.messages
    else:
        assert isinstance(got, trt.OnnxParser) and got.num_errors == 1
        assert refused in got.get_error(0).desc(), got.get_error(0).desc()


def test_tensorrt_11_enum_values_are_its_own():
    ten, eleven = emu_trt.module("10.3.0"), emu_trt.module("11.4.0.106")
    flags = eleven.NetworkDefinitionCreationFlag
    assert int(flags.STRONGLY_TYPED) == 0 and int(flags.PREFER_JIT_PYTHON_PLUGINS) == 1     # NvInfer.h v11.1
    assert int(ten.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(ten.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) == 0
    names = (ROOT / "tests" / "data" / "tensorrt-python-names" / "11.4.0.106.txt").read_text().split()
    assert {m for m in flags.__members__} <= set(names)


def test_strongly_typed_flag_on_11_is_bit_0(trt, emulated_gpu):
    eleven = emu_trt.module("11.4.0.106")
    log = Log(eleven)
    network = eleven.Builder(log.logger).create_network(1 << int(eleven.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert network.flags == 1 and network.get_flag(eleven.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert not network.get_flag(eleven.NetworkDefinitionCreationFlag.PREFER_JIT_PYTHON_PLUGINS)


def test_a_capture_failure_inside_tensorrt_leaves_cudart_error_until_cleared(trt, cuda):
    from avgn_edge.kernels.cuda_driver import clear_runtime_error
    log = Log(trt)
    engine = _engine(trt, log, _model(2))
    s = cuda.cuStreamCreate(1)[1]
    x, y = (int(cuda.cuMemAlloc(32)[1]) for _ in range(2))
    for clear in (False, True):
        c = engine.create_execution_context()
        c.set_tensor_address("x", x)
        c.set_tensor_address("y", y)
        cuda.cuStreamBeginCapture(s, cuda.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        assert c.execute_async_v3(int(s)) is False                     # first enqueue, inside a capture
        assert cuda.cuStreamEndCapture(s)[0] == cuda.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        if clear:
            clear_runtime_error()
        assert c.execute_async_v3(int(s)) is clear
        if not clear:
            assert "never cleared" in log.messages[-1]
        cuda.cuStreamSynchronize(s)
        del c
        gc.collect()
    for p in (x, y):
        cuda.cuMemFree(p)
    cuda.cuStreamDestroy(s)
