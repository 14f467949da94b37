"""TensorRT backend: engines, device buffers and one CUDA stream in the primary context.

* Engines come from ``avgn_edge.trt.build.load_engines`` (cached and keyed; a cached engine that
  does not deserialize is rebuilt), one execution context each. The contexts share one scratch
  buffer (``USER_MANAGED``): the stages run one after another on one stream, and on a Jetson
  GPU memory is the system's memory.
* Engines take a dynamic leading batch, built with one optimization profile (the manifest's
  batch min/opt/max; trt/build.py). Every tensor name of the bundle has one device buffer, sized
  for the profile's max, so an output and the next stage's input of the same name are the same
  memory: no copies between engines. Each call sets the input shapes for its batch first.
* Each entry point makes the CUDA context current on the calling thread (``@on_device``):
  contexts are per CPU thread, and a Recognizer is often fed from another thread than the one
  that built it (the live loop's inference thread).
* One optimization profile (0) for every context, including the graph contexts of
  trt_pipeline.py: TensorRT asks for a separate profile per context *in concurrent use*, and
  these never are: every context enqueues on the one stream, one after another, and only then
  is sharing profile 0 (and the scratch) allowed. Contexts used from several streams at once
  would need an engine built with one profile per context and ``set_optimization_profile_async``.
* Every ``set_tensor_address`` is checked: TensorRT refuses an unknown name or an address that
  is not 256-byte aligned by returning False and keeping the old address.
* ``pipeline()`` is the device-resident glance pipeline (trt_pipeline.py).

The gpu-marked tests run all of this on a real GPU, or on the emulated one (avgn_edge/emulator)
where there is none; the TensorRT names it uses are checked against TensorRT 10.3 and 11.4
(tests/test_trt.py).
"""

from __future__ import annotations

import logging

import numpy as np

from ..bundle import Bundle
from ..errors import EngineError, InputError
from ..kernels.device import DeviceMemory, PrimaryContext, check, on_device

log = logging.getLogger(__name__)
ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "int64": 8, "int8": 1, "uint8": 1}


def nbytes(spec, batch: int = 1) -> int:
    return int(np.prod(spec.at(batch))) * ITEMSIZE[spec.dtype]


class TrtBackend:
    name = "trt"

    def __init__(self, bundle: Bundle, precision: str = "fp16", engines_dir=None, workspace_mib: int = 1024,
                 cuda_graph: bool = True):
        from ..trt.build import import_tensorrt
        self.trt = import_tensorrt()
        self.bundle, self.precision, self.cuda_graph = bundle, precision, cuda_graph
        self.cuda, self.mem, self.stream, self._pipelines = None, None, None, []
        self.engines, self.contexts = {}, {}
        self.cuda = PrimaryContext()
        try:
            with self.cuda.current():
                self._open(engines_dir, workspace_mib)
        except BaseException:
            self.close()
            raise

    def _open(self, engines_dir, workspace_mib):
        from ..trt.build import load_engines, trt_logger
        trt, driver = self.trt, self.cuda.driver
        self.driver, self.logger = driver, trt_logger(trt)
        loaded = load_engines(self.bundle, self.precision, engines_dir, workspace_mib, log=log.info)
        self.engines = {item.stage: engine for item, engine in loaded}
        # the most items one call may carry: what each engine's profile was built for
        self.max_batch = {stage: self._profile_max(stage, engine) for stage, engine in self.engines.items()}
        self.mem = DeviceMemory()
        self.scratch_size = max(int(e.device_memory_size_v2) for e in self.engines.values())
        self.scratch = self.mem.alloc(self.scratch_size) if self.scratch_size else 0
        self.contexts = {stage: self._new_context(stage) for stage in self.engines}
        self.stream = check(driver.cuStreamCreate(driver.CUstream_flags.CU_STREAM_NON_BLOCKING))
        self.shapes: dict[str, int] = {}                 # stage -> the batch its context's inputs are set for
        sizes: dict[str, int] = {}
        for stage, spec in self.bundle.stages.items():
            for t in spec.inputs + spec.outputs:
                sizes[t.name] = max(sizes.get(t.name, 0), nbytes(t, self.max_batch[stage]))
        self.buffers = {name: self.mem.alloc(size) for name, size in sizes.items()}

    def _profile_max(self, stage: str, engine) -> int:
        spec = self.bundle.stages[stage]
        shapes = engine.get_tensor_profile_shape(spec.inputs[0].name, 0)     # [min, opt, max] of profile 0
        try:                                 # no profile: three invalid Dims (nbDims -1), not an empty list
            batch = int(shapes[2][0])
        except (IndexError, ValueError, TypeError):
            batch = 0
        if batch < 1:
            raise EngineError(f"the {stage} engine has no optimization profile for its batch ({self._said()})",
                              hint="rebuild it: avgn-edge build-engines --force")
        return batch

    def _said(self) -> str:
        return "; ".join(self.logger.take()[-2:]) or "no details from TensorRT"

    def _new_context(self, stage: str):
        """An execution context of the stage's engine on the shared scratch memory."""
        trt = self.trt
        context = self.engines[stage].create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if context is None:
            raise EngineError(f"TensorRT cannot create an execution context for {stage} ({self._said()})")
        if self.scratch_size:
            context.set_device_memory(self.scratch, self.scratch_size)
        return context

    def _set_shapes(self, context, stage: str, n: int) -> None:
        if not 1 <= n <= self.max_batch[stage]:
            raise InputError(f"{stage}: batch {n} is outside the engine's 1..{self.max_batch[stage]}",
                             hint="split the call (HostPipeline and the TensorRT pipeline do)")
        for t in self.bundle.stages[stage].inputs:
            if not context.set_input_shape(t.name, t.at(n)):
                raise EngineError(f"TensorRT refused shape {list(t.at(n))} for {stage}'s input {t.name} "
                                  f"({self._said()})")

    def set_batch(self, stage: str, n: int) -> None:
        """Set the stage's input shapes for ``n`` items (outside any capture: TensorRT then does setup work)."""
        if self.shapes.get(stage) != n:
            self._set_shapes(self.contexts[stage], stage, n)
            self.shapes[stage] = n

    def fixed_contexts(self, stages, n: int) -> dict:
        """Contexts of their own for ``stages``, input shapes set once for ``n`` items and never changed:
        a captured CUDA graph stays tied to the context it was captured from, shapes included, so graphs
        are captured on these and the eager path (whose shapes change) keeps ``contexts``."""
        out = {stage: self._new_context(stage) for stage in stages}
        for stage, context in out.items():
            self._set_shapes(context, stage, n)
        return out

    # -- host I/O path (parity checks, calibration-style use)
    @on_device
    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        driver, spec = self.driver, self.bundle.stages[stage]
        n = len(feeds[spec.inputs[0].name])
        self.set_batch(stage, n)
        for t in spec.inputs:
            a = np.ascontiguousarray(feeds[t.name], dtype=t.dtype)
            if a.shape != t.at(n):
                raise InputError(f"{stage}: input {t.name} is {list(a.shape)}, the engine takes {list(t.at(n))}")
            check(driver.cuMemcpyHtoDAsync(self.buffers[t.name], a.ctypes.data, a.nbytes, self.stream))
        self.execute(stage)
        out = {t.name: np.empty(t.at(n), t.dtype) for t in spec.outputs}
        for t in spec.outputs:
            check(driver.cuMemcpyDtoHAsync(out[t.name].ctypes.data, self.buffers[t.name], out[t.name].nbytes,
                                           self.stream))
        check(driver.cuStreamSynchronize(self.stream))
        return out

    # -- the device path (call with the context current: inside run / the pipeline's methods)
    def bind(self, stage: str, addresses: dict[str, int] | None = None, contexts: dict | None = None) -> None:
        """Bind the stage's tensors to the shared buffers, or to ``addresses`` where given (on ``contexts``,
        default the backend's own)."""
        context, spec = (contexts or self.contexts)[stage], self.bundle.stages[stage]
        for t in spec.inputs + spec.outputs:
            address = (addresses or {}).get(t.name, self.buffers[t.name])
            if not context.set_tensor_address(t.name, address):
                raise EngineError(f"TensorRT refused address {address:#x} for {stage}'s tensor {t.name} "
                                  f"({self._said()})", hint="tensor addresses must be 256-byte aligned")

    def enqueue(self, stage: str, contexts: dict | None = None) -> None:
        if not (contexts or self.contexts)[stage].execute_async_v3(int(self.stream)):
            raise EngineError(f"TensorRT failed to enqueue {stage} ({self._said()})")

    def execute(self, stage: str, addresses: dict[str, int] | None = None) -> None:
        """Bind, then enqueue one stage on the stream."""
        self.bind(stage, addresses)
        self.enqueue(stage)

    def pipeline(self, bundle: Bundle) -> "TrtPipeline":
        from .trt_pipeline import TrtPipeline
        p = TrtPipeline(self)
        self._pipelines.append(p)
        return p

    def close(self) -> None:
        """Free everything this backend made (graphs, events, module, memory, stream), then release the
        context. The pipelines drop their pinned views first: nothing keeps pointing at freed memory."""
        if self.cuda is None:
            return
        driver = self.cuda.driver
        try:
            with self.cuda.current():
                for p in self._pipelines:
                    p.close()
                self._pipelines = []
                if self.stream is not None:
                    driver.cuStreamSynchronize(self.stream)
                self.contexts.clear()                    # before the scratch memory they use
                self.engines.clear()
                if self.mem is not None:
                    self.mem.close()
                if self.stream is not None:
                    driver.cuStreamDestroy(self.stream)
                    self.stream = None
        finally:
            self.cuda.release()
            self.cuda = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
