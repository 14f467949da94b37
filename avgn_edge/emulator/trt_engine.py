"""The emulated TensorRT's runtime side: Runtime, engine, execution context, and the enqueue.

An engine runs its ONNX graph with ONNX Runtime (CPU, one thread; Q/DQ graphs with graph
optimizations off, so INT8 is the exact fake-quantized arithmetic, as OrtBackend runs it) on
the emulated device memory its tensors are bound to, as one operation queued on the stream.
Addresses and input shapes are read when ``execute_async_v3`` is called, as TensorRT does.
Rules a device has and this models (trt_rules.py; each refused in tests/emulator/test_emulator_gpu_rules.py):

* a CUDA graph stays tied to the state of the context it was captured from: replaying it after
  the context was re-bound or re-shaped is undefined on a device, refused here (the context is
  lost, as after an illegal address); so is replaying it after the context was destroyed, and
  destroying a context while a graph uses it is recorded as a violation;
* each context has its active optimization profile (``set_optimization_profile_async``, default
  0); input shapes are checked against it, and two contexts of one engine on the same profile
  must not run concurrently (work pending on two streams);
* a failed enqueue during capture leaves cudart's per-thread last error set, and the next
  enqueue on that thread reports it, until ``cudaGetLastError`` clears it (trtexec does).
"""

from __future__ import annotations

import weakref

import numpy as np

from . import streams, trt_plan, trt_rules
from .api import CudaError, R
from .device import STATE
from .ort_session import make_session  # noqa: F401
from .trt_build import TRT_TO_NUMPY, Dims, IHostMemory, tensor_meta  # noqa: F401

ALIGNMENT = 256                      # TensorRT's minimum tensor address alignment (NvInferRuntime.h)


class Runtime:
    _lib = None

    def __init__(self, logger):
        self._lib.adopt(logger, "createInferRuntime")
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, serialized_engine):
        STATE.cudart_current()
        data = bytes(serialized_engine)
        try:
            meta, onnx_bytes = trt_plan.decode(data, self._lib.version, "%d.%d" % STATE.device.cc)
        except trt_plan.PlanError as exc:
            self._lib.error(str(exc))
            return None
        return ICudaEngine(self._lib, meta, onnx_bytes, data)


class ICudaEngine:
    def __init__(self, lib, meta: dict, onnx_bytes: bytes, plan: bytes):
        self._lib, self._meta, self._plan = lib, meta, plan
        self.session = make_session(onnx_bytes)
        self.io = {t["name"]: (t, True) for t in meta["inputs"]}
        self.io.update({t["name"]: (t, False) for t in meta["outputs"]})
        self._names = [t["name"] for t in meta["inputs"]] + [t["name"] for t in meta["outputs"]]
        self.name, self.num_layers = meta["name"], meta["layers"]

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def _tensor(self, name: str):
        if name not in self.io:
            self._lib.error(f"Error Code 3: API Usage Error (Parameter check failed, condition: "
                            f"mEngine.bindingNameToIndex(tensorName) != -1. Given invalid tensor name: {name})")
            return None
        return self.io[name]

    def get_tensor_mode(self, name: str):
        t = self._tensor(name)
        modes = self._lib.TensorIOMode
        return modes.NONE if t is None else (modes.INPUT if t[1] else modes.OUTPUT)

    def get_tensor_dtype(self, name: str):
        t = self._tensor(name)
        return self._lib.DataType[t[0]["dtype"]] if t is not None else self._lib.DataType.FLOAT

    def get_tensor_shape(self, name: str) -> Dims:
        t = self._tensor(name)
        return Dims(t[0]["shape"]) if t is not None else Dims(())

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list:
        profiles = self._meta["profiles"]
        if not 0 <= profile_index < len(profiles) or name not in profiles[profile_index]:
            return [trt_rules.InvalidDims()] * 3          # as TensorRT: three invalid Dims, never []
        return [Dims(d) for d in profiles[profile_index][name]]

    @property
    def num_optimization_profiles(self) -> int:
        return max(1, len(self._meta["profiles"]))

    @property
    def device_memory_size_v2(self) -> int:
        return int(self._meta["device_memory"])

    def __getattr__(self, name):
        if name == "device_memory_size" and self._lib.major < 11:       # deprecated in 10.x, gone in 11
            return self.device_memory_size_v2
        raise AttributeError(f"'tensorrt.ICudaEngine' object has no attribute '{name}'")

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        return self.device_memory_size_v2

    def is_shape_inference_io(self, name: str) -> bool:
        return False

    def serialize(self) -> IHostMemory:
        return IHostMemory(self._plan)

    def create_execution_context(self, strategy=None):
        strategies = self._lib.ExecutionContextAllocationStrategy
        strategy = strategies.STATIC if strategy is None else strategy
        ctx = STATE.cudart_current()
        context = IExecutionContext(self, strategy)
        trt_rules.track_context(context)
        if strategy != strategies.USER_MANAGED and self.device_memory_size_v2:
            # the owner holds the context weakly: the context, once unreferenced, is destroyed and frees it
            a = STATE.memory.device.alloc(self.device_memory_size_v2, owner=ContextScratch(ctx, context))
            if a is None:
                self._lib.error("Error Code 2: OutOfMemory (no memory for the execution context's scratch)")
                return None
            context.ctx, context.scratch = ctx, (a.base, a.size)
            weakref.finalize(context, _free_scratch, a)
        return context


class ContextScratch:
    """The owner of an execution context's own scratch: the CUDA context (freed with it) and the
    execution context, weakly."""

    def __init__(self, ctx, context):
        self.ctx, self.context = ctx, weakref.ref(context)


def _free_scratch(a) -> None:
    if a.live:
        STATE.memory.device.free(a)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine, strategy):
        self.engine, self.strategy, self._lib = engine, strategy, engine._lib
        self.ctx = None
        self.scratch: tuple[int, int] | None = None
        self.addresses: dict[str, int] = {}
        self.shapes = {n: list(t["shape"]) for n, (t, is_in) in engine.io.items() if is_in and -1 not in t["shape"]}
        self._ready_for: tuple | None = None          # input shapes the last enqueue was set up for
        self.name = ""
        self.profile, self.last_work = 0, None        # the active optimization profile; (stream, op) last enqueued

    @property
    def active_optimization_profile(self) -> int:
        return self.profile

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        return trt_rules.set_profile(self, int(profile_index), stream_handle)

    # -- binding
    def set_tensor_address(self, name: str, memory: int) -> bool:
        if self.engine._tensor(name) is None:
            return False
        if int(memory) % ALIGNMENT:
            self._lib.error(f"Error Code 3: API Usage Error (Parameter check failed, condition: "
                            f"(reinterpret_cast<uintptr_t>(data) & ({ALIGNMENT} - 1)) == 0. Tensor {name}: "
                            f"address {int(memory):#x} is not aligned to {ALIGNMENT} bytes)")
            return False
        self.addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self.addresses.get(name, 0)

    def set_input_shape(self, name: str, shape) -> bool:
        t = self.engine._tensor(name)
        if t is None or not t[1]:
            return False
        dims = [int(d) for d in shape]
        static = t[0]["shape"]
        profiles = self.engine._meta["profiles"]
        ok = len(dims) == len(static) and all(s in (-1, d) for s, d in zip(static, dims))
        if ok and -1 in static:
            lo, _, hi = profiles[self.profile][name]
            ok = all(a <= d <= b for a, d, b in zip(lo, dims, hi))
        if not ok:
            self._lib.error(f"Error Code 3: API Usage Error (Parameter check failed: input {name} shape {dims} is "
                            f"outside the engine's {static} / optimization profile)")
            return False
        self.shapes[name] = dims
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        t = self.engine._tensor(name)
        if t is None:
            return Dims(())
        meta, is_input = t
        if is_input:
            return Dims(self.shapes.get(name, meta["shape"]))
        known = {s: d for n, (m, i) in self.engine.io.items() if i and n in self.shapes
                 for s, d in zip(m["symbols"], self.shapes[n]) if s}
        return Dims(d if d != -1 else known.get(s, -1) for d, s in zip(meta["shape"], meta["symbols"]))

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(n in self.shapes for n, (t, i) in self.engine.io.items() if i)

    def infer_shapes(self) -> list:
        return [n for n, (t, i) in self.engine.io.items() if i and n not in self.shapes]

    def set_device_memory(self, memory: int, size: int) -> None:
        if int(size) < self.engine.device_memory_size_v2 or int(memory) % ALIGNMENT:
            self._lib.error(f"Error Code 3: API Usage Error (setDeviceMemoryV2: {size} bytes at {int(memory):#x}; the "
                            f"engine needs {self.engine.device_memory_size_v2}, {ALIGNMENT}-byte aligned)")
            return
        self.scratch = (int(memory), int(size))

    # -- the enqueue
    def execute_async_v3(self, stream_handle: int) -> bool:
        lib, engine = self._lib, self.engine
        STATE.cudart_current()
        if trt_rules.stale_cudart_error(lib):
            return False
        stream = trt_rules.stream_or_error(lib, stream_handle)
        if stream is None:
            return False
        unbound = [n for n in engine._names if not self.addresses.get(n)]
        if unbound:
            lib.error(f"Error Code 3: API Usage Error (Parameter check failed, condition: mContext.getTensorAddress"
                      f"({unbound[0]}) != nullptr. Neither address or allocator is set for tensor {unbound[0]}. Call "
                      "setTensorAddress or setOutputAllocator before enqueue/execute.)")
            return False
        if not self.all_binding_shapes_specified:
            lib.error(f"Error Code 3: API Usage Error (input shapes not specified: {self.infer_shapes()})")
            return False
        if self.scratch is None and engine.device_memory_size_v2:
            lib.error("Error Code 3: API Usage Error (the context was created with USER_MANAGED memory and "
                      "setDeviceMemory was not called)")
            return False
        if not trt_rules.enqueue_allowed(self, stream):
            return False
        shapes = {n: list(self.get_tensor_shape(n)) for n in engine._names}
        ready_key = tuple(tuple(v) for v in shapes.values())
        if self._ready_for != ready_key:              # first enqueue for these shapes: setup work on the stream
            if stream.capture is not None:
                streams.invalidate(stream.capture, "TensorRT's first enqueue for these shapes")
                trt_rules.set_cudart_error("cudaErrorStreamCaptureInvalidated")
                lib.error("Error Code 1: Cuda Runtime (operation not permitted when stream is capturing: the first "
                          "enqueueV3 after creating the context or changing an input shape must run outside capture)")
                return False
            self._ready_for = ready_key
        bound = [(n, self.addresses[n], shapes[n], TRT_TO_NUMPY[engine.io[n][0]["dtype"]], engine.io[n][1])
                 for n in engine._names]
        run = _runner(engine, bound, self.scratch)
        if stream.capture is not None:                # replayed later: checked against the context then
            run = trt_rules.captured(self, run)
        try:
            op = streams.enqueue(stream, f"TensorRT engine {engine.name}", run)
        except CudaError as exc:
            if stream.capture is not None:
                trt_rules.set_cudart_error(exc.code.name if hasattr(exc, "code") else str(exc))
            lib.error(f"Error Code 1: Cuda Runtime ({exc})")
            return False
        self.last_work = (stream, op) if op is not None else self.last_work
        return True


def _view(ptr: int, shape, dtype) -> np.ndarray:
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    arena = STATE.memory.arena_of(ptr)
    return arena.view(ptr, n).view(dtype).reshape(shape)


def _runner(engine: ICudaEngine, bound, scratch):
    def run():
        memory = STATE.memory
        for name, ptr, shape, dtype, _ in bound:
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if -1 in shape or memory.accessible_range(ptr, n) is None:
                raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{engine.name}: tensor {name} [{ptr:#x}, +{n}) is "
                                                              f"{memory.describe(ptr)}")
        if scratch is not None and memory.device_range(*scratch) is None:
            raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{engine.name}: its scratch memory is "
                                                          f"{memory.describe(scratch[0])}")
        feeds = {name: _view(ptr, shape, dtype).copy() for name, ptr, shape, dtype, is_in in bound if is_in}
        outs = [b for b in bound if not b[4]]
        results = engine.session.run([b[0] for b in outs], feeds)
        for (name, ptr, shape, dtype, _), value in zip(outs, results):
            _view(ptr, shape, dtype)[...] = value.reshape(shape)
        if scratch is not None:                        # activations are not kept between enqueues
            memory.device.view(*scratch)[:] = 0xA5
    return run
