"""TensorRT backend: engines, device buffers, one stream, a device-resident glance pipeline.

* Engines are built or reused through ``avgn_edge.trt.build`` (cached, keyed), deserialized
  once, one execution context each, all on one CUDA stream in the primary context (shared
  with the crop kernel and any other CUDA user in the process).
* Every tensor name of the bundle has one device buffer, so an output and the next stage's
  input of the same name are the same memory: no copies and no host round trips inside a
  decision (decide -> crop kernel -> focus_local -> head; the kernel reads the indices and
  centres decide wrote).
* The feature ring is *mirrored*: snippet n is written to slots n % T and n % T + T, so the
  window of the last T snippets is always contiguous at slot (n - T + 1) % T and decide and
  head read it in place.
* Camera frames go host -> pinned staging -> the device frame ring; the glance view is cut
  on the device by the same kernel.
* The decision step can be captured as a CUDA graph, one per window start (T of them, made
  lazily); if capture fails the step runs eagerly, with a one-time message.

Not runnable without a GPU: the tests that exercise it are marked ``gpu``; the names it
uses are checked against TensorRT 10.3 and 11.4 in CI (tests/test_trt.py).
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from ..bundle import STAGES, Bundle
from ..deps import require
from ..errors import EngineError
from ..kernels.launch import CropKernel
from .pipeline import Timer, boxes_xyxy

log = logging.getLogger(__name__)
_ITEM = {"float32": 4, "float16": 2, "int32": 4, "int64": 8, "int8": 1, "uint8": 1}


def _check(result):
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise EngineError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else tuple(values) or None


class DeviceMemory:
    """Owns device buffers and pinned host buffers; frees them on close."""

    def __init__(self, driver):
        self.driver = driver
        self.device: list = []
        self.host: list[int] = []

    def alloc(self, nbytes: int) -> int:
        ptr = int(_check(self.driver.cuMemAlloc(max(int(nbytes), 1))))
        self.device.append(ptr)
        return ptr

    def pinned(self, shape, dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(_check(self.driver.cuMemHostAlloc(max(nbytes, 1), 0)))
        self.host.append(ptr)
        raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def free(self, ptr) -> None:
        """Release one buffer early (e.g. the frame ring when the camera's frame size changes)."""
        if ptr in self.device:
            self.device.remove(ptr)
            _check(self.driver.cuMemFree(ptr))
        elif ptr in self.host:
            self.host.remove(ptr)
            _check(self.driver.cuMemFreeHost(ptr))

    def close(self):
        for ptr in self.device:
            self.driver.cuMemFree(ptr)
        for ptr in self.host:
            self.driver.cuMemFreeHost(ptr)
        self.device, self.host = [], []


class TrtBackend:
    name = "trt"
    max_batch = 1           # engines are built for batch 1 (trt/build.py); batched profiles are a follow-up

    def __init__(self, bundle: Bundle, precision: str = "fp16", engines_dir=None, workspace_mib: int = 1024,
                 cuda_graph: bool = True):
        from ..trt.build import build_engines, import_tensorrt
        trt = import_tensorrt()
        self.driver = driver = require("cuda.bindings.driver")
        self.bundle, self.precision, self.cuda_graph = bundle, precision, cuda_graph
        _check(driver.cuInit(0))
        self.device = _check(driver.cuDeviceGet(0))
        self.ctx = _check(driver.cuDevicePrimaryCtxRetain(self.device))
        _check(driver.cuCtxSetCurrent(self.ctx))
        paths = build_engines(bundle, precision, engines_dir, workspace_mib, log=log.info)
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        self.engines, self.contexts = {}, {}
        for stage, path in zip(STAGES, paths):
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineError(f"cannot deserialize {path}", hint="rebuild it: avgn-edge build-engines --force")
            self.engines[stage] = engine
            context = engine.create_execution_context()
            for t in bundle.stages[stage].inputs:           # the dynamic batch dim, fixed at 1
                context.set_input_shape(t.name, t.at(1))
            self.contexts[stage] = context
        self.stream = _check(driver.cuStreamCreate(driver.CUstream_flags.CU_STREAM_NON_BLOCKING))
        self.mem = DeviceMemory(driver)
        # one buffer per tensor name (batch of one decision), shared between stages
        self.buffers: dict[str, int] = {}
        for spec in bundle.stages.values():
            for t in spec.inputs + spec.outputs:
                if t.name not in self.buffers:
                    self.buffers[t.name] = self.mem.alloc(int(np.prod(t.at(1))) * _ITEM[t.dtype])
        self._runtime = runtime

    # -- host I/O path (parity checks, calibration-style use)
    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        driver, spec = self.driver, self.bundle.stages[stage]
        for t in spec.inputs:
            a = np.ascontiguousarray(feeds[t.name], dtype=t.dtype)
            _check(driver.cuMemcpyHtoDAsync(self.buffers[t.name], a.ctypes.data, a.nbytes, self.stream))
        self.execute(stage)
        out = {t.name: np.empty(t.at(1), t.dtype) for t in spec.outputs}
        for t in spec.outputs:
            _check(driver.cuMemcpyDtoHAsync(out[t.name].ctypes.data, self.buffers[t.name], out[t.name].nbytes, self.stream))
        _check(driver.cuStreamSynchronize(self.stream))
        return out

    def execute(self, stage: str, addresses: dict[str, int] | None = None) -> None:
        """Enqueue one stage on the stream, its tensors bound to the shared buffers (or ``addresses``)."""
        context = self.contexts[stage]
        spec = self.bundle.stages[stage]
        for t in spec.inputs + spec.outputs:
            context.set_tensor_address(t.name, (addresses or {}).get(t.name, self.buffers[t.name]))
        if not context.execute_async_v3(int(self.stream)):
            raise EngineError(f"TensorRT failed to enqueue {stage}")

    def pipeline(self, bundle: Bundle) -> "TrtPipeline":
        return TrtPipeline(self)

    def close(self) -> None:
        if getattr(self, "mem", None) is not None:
            self.driver.cuStreamSynchronize(self.stream)
            self.mem.close()
            self.contexts.clear()
            self.engines.clear()
            self.driver.cuStreamDestroy(self.stream)
            self.driver.cuDevicePrimaryCtxRelease(self.device)
            self.mem = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TrtPipeline:
    """The whole glance pipeline on the device (see the module docstring)."""

    device_ring = True          # the Recognizer's ring holds no features: they are on the device

    def __init__(self, backend: TrtBackend):
        self.b = backend
        self.driver = backend.driver
        cfg = self.cfg = backend.bundle.config
        self.T, self.k = cfg.num_snippets, cfg.top_k
        self.kernel = CropKernel()
        specs = {t.name: t for st in backend.bundle.stages.values() for t in st.inputs + st.outputs}
        self.sizes = {n: int(np.prod(t.at(1))) * _ITEM[t.dtype] for n, t in specs.items()}
        # mirrored feature rings: 2T slots of one snippet's glance outputs each
        self.rings = {ring: (backend.mem.alloc(2 * self.T * self.sizes[one]), self.sizes[one])
                      for ring, one in (("gmaps", "gmap"), ("gvecs", "gvec"), ("avecs", "avec"))}
        self.frames_dev, self.frame_shape = None, None
        self.wave_host = backend.mem.pinned((1, cfg.audio_samples), np.float32)
        self.out_host = {n: backend.mem.pinned(specs[n].at(1), specs[n].dtype)
                         for n in ("saliency", "indices", "centres", "scores")}
        self.graphs: dict[int, object] = {}
        self.graph_failed = not backend.cuda_graph
        self.events = [_check(backend.driver.cuEventCreate(0)) for _ in range(4)]

    def _frames(self, frame: np.ndarray):
        if frame.shape != self.frame_shape:      # (re)allocate the device frame ring and pinned staging
            _check(self.driver.cuStreamSynchronize(self.b.stream))
            if self.frames_dev is not None:
                self.b.mem.free(self.frames_dev)
                self.b.mem.free(self.frame_host.ctypes.data)
            self.frame_shape = frame.shape
            self.frame_bytes = frame.nbytes
            self.frames_dev = self.b.mem.alloc(self.T * frame.nbytes)
            self.frame_host = self.b.mem.pinned(frame.shape, np.uint8)
            self.graphs.clear()

    def encode(self, slot: int, frame: np.ndarray, wave: np.ndarray, timer: Timer) -> dict:
        driver, b, s, cfg = self.driver, self.b, self.b.stream, self.cfg
        self._frames(frame)
        h, w = frame.shape[:2]
        ev0, ev1 = self.events[2:]
        self.frame_host[...] = frame
        self.wave_host[0] = wave
        _check(driver.cuEventRecord(ev0, s))
        _check(driver.cuMemcpyHtoDAsync(self.frames_dev + slot * self.frame_bytes, self.frame_host.ctypes.data,
                                   self.frame_bytes, s))
        _check(driver.cuMemcpyHtoDAsync(b.buffers["wave"], self.wave_host.ctypes.data, self.wave_host.nbytes, s))
        self.kernel.glance(self.frames_dev, (self.T, h, w), b.buffers["glance"], cfg.glance_size, cfg.mean, cfg.std,
                           count=1, start=slot, stream=s)
        addr = {name: base + slot * one for name, (base, one) in
                (("gmap", self.rings["gmaps"]), ("gvec", self.rings["gvecs"]), ("avec", self.rings["avecs"]))}
        b.execute("glance_visual", addr)
        b.execute("glance_audio", addr)
        for base, one in self.rings.values():          # mirror into slot + T
            _check(driver.cuMemcpyDtoDAsync(base + (slot + self.T) * one, base + slot * one, one, s))
        _check(driver.cuEventRecord(ev1, s))
        _check(driver.cuStreamSynchronize(s))       # the pinned staging buffers are reused by the next snippet
        timer.ms["encode_gpu"] = float(_check(driver.cuEventElapsedTime(ev0, ev1)))
        return {}

    def _enqueue_decision(self, start: int):
        b, cfg = self.b, self.cfg
        window = {name: base + start * one for name, (base, one) in self.rings.items()}
        b.execute("decide", window)
        h, w = self.frame_shape[:2]
        self.kernel.patches(self.frames_dev, (self.T, h, w), b.buffers["indices"], b.buffers["centres"], self.k,
                            cfg.patch_size / cfg.frame_size, b.buffers["patches"], cfg.patch_size, cfg.mean, cfg.std,
                            start=start, stream=b.stream)
        b.execute("focus_local")
        b.execute("head", window)
        for name, host in self.out_host.items():
            _check(b.driver.cuMemcpyDtoHAsync(host.ctypes.data, b.buffers[name], host.nbytes, b.stream))

    def _graph(self, start: int):
        """The decision step for window ``start`` as an instantiated CUDA graph, or None."""
        if self.graph_failed:
            return None
        if start not in self.graphs:
            driver, s = self.driver, self.b.stream
            try:
                self._enqueue_decision(start)                      # warm-up outside the capture
                _check(driver.cuStreamSynchronize(s))
                _check(driver.cuStreamBeginCapture(s, driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
                try:
                    self._enqueue_decision(start)
                finally:
                    graph = _check(driver.cuStreamEndCapture(s))
                self.graphs[start] = _check(driver.cuGraphInstantiate(graph, 0))
            except EngineError as exc:
                log.warning("CUDA graph capture failed (%s): running the decision step without a graph", exc)
                self.graph_failed = True
                return None
        return self.graphs[start]

    def decide(self, ring, timer: Timer) -> dict:
        driver, s = self.driver, self.b.stream
        start = ring.count % self.T                       # oldest snippet of the window
        ev0, ev1 = self.events[:2]
        graph = self._graph(start)
        _check(driver.cuEventRecord(ev0, s))
        if graph is not None:
            _check(driver.cuGraphLaunch(graph, s))
        else:
            self._enqueue_decision(start)
        _check(driver.cuEventRecord(ev1, s))
        _check(driver.cuStreamSynchronize(s))
        timer.ms["decision_gpu"] = float(_check(driver.cuEventElapsedTime(ev0, ev1)))
        out = {n: np.array(h[0]) for n, h in self.out_host.items()}       # batch 1
        box_frac = self.cfg.patch_size / self.cfg.frame_size
        out["boxes"] = boxes_xyxy(out["centres"], box_frac, *self.frame_shape[:2])
        return out
