"""The glance pipeline on the device (TensorRT backend), with the two methods of pipeline.py:

    encode(slot, frame, wave, timer)   frame -> pinned staging -> device frame ring; the crop kernel cuts
                                       the glance view; the glance engines write into the feature rings
    decide(ring, timer)                decide -> crop kernel (patches) -> focus_local -> head, on the
                                       window of the last T snippets, read in place from the rings

The feature rings are mirrored (kernels/ring.py), so a window is contiguous. Where a ring's
slot size is not a multiple of 256 bytes (TensorRT's alignment), engines write into an aligned
buffer copied into the ring, and windows are copied out into aligned buffers.

The decision step can be captured as a CUDA graph, one per window start (T of them, made
lazily), as trtexec does it: tensors bound outside the capture, one warm-up enqueue, then only
the enqueues captured. If capture fails (a CUDA or TensorRT refusal) the step runs eagerly
from then on, with a one-time warning.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import EngineError
from ..kernels.device import check, on_device
from ..kernels.launch import CropKernel
from ..kernels.ring import DeviceRing
from .pipeline import Timer, boxes_xyxy
from .trt import TrtBackend, nbytes

log = logging.getLogger(__name__)
RINGS = (("gmaps", "gmap"), ("gvecs", "gvec"), ("avecs", "avec"))     # window tensor, per-snippet tensor
OUTPUTS = ("saliency", "indices", "centres", "scores")


class TrtPipeline:
    device_ring = True          # the Recognizer's ring holds no features: they are on the device

    def __init__(self, backend: TrtBackend):
        self.b, self.driver = backend, backend.driver
        cfg = self.cfg = backend.bundle.config
        self.T, self.k = cfg.num_snippets, cfg.top_k
        self.specs = {t.name: t for st in backend.bundle.stages.values() for t in st.inputs + st.outputs}
        self.graphs: dict[int, object] = {}
        self.graph_failed = not backend.cuda_graph
        self.frames, self.frame_shape, self.frame_host, self.kernel = None, None, None, None
        with backend.cuda.current():
            self.kernel = CropKernel()
            mem = backend.mem
            self.rings = {window: DeviceRing(mem, self.T, nbytes(self.specs[one])) for window, one in RINGS}
            self.wave_host = mem.pinned((1, cfg.audio_samples), np.float32)
            self.out_host = {n: mem.pinned(self.specs[n].at(1), self.specs[n].dtype) for n in OUTPUTS}
            self.events = [check(self.driver.cuEventCreate(0)) for _ in range(4)]

    @property
    def cuda(self):
        return self.b.cuda if self.kernel is not None else None

    def _frames(self, frame: np.ndarray):
        """(Re)allocate the device frame ring and its pinned staging buffer for this frame size."""
        if frame.shape == self.frame_shape:
            return
        check(self.driver.cuStreamSynchronize(self.b.stream))
        self._drop_graphs()                              # they hold the old ring's address
        if self.frames is not None:
            self.b.mem.free(self.frames.base)
            self.b.mem.free(self.frame_host.ctypes.data)
        self.frame_shape, self.frame_host = None, None
        self.frames = DeviceRing(self.b.mem, self.T, frame.nbytes, mirrored=False)
        self.frame_host = self.b.mem.pinned(frame.shape, np.uint8)
        self.frame_shape = frame.shape

    @on_device
    def encode(self, slot: int, frame: np.ndarray, wave: np.ndarray, timer: Timer) -> dict:
        driver, b, s, cfg = self.driver, self.b, self.b.stream, self.cfg
        self._frames(frame)
        h, w = frame.shape[:2]
        ev0, ev1 = self.events[2:]
        self.frame_host[...] = frame
        self.wave_host[0] = wave
        check(driver.cuEventRecord(ev0, s))
        check(driver.cuMemcpyHtoDAsync(self.frames.slot(slot), self.frame_host.ctypes.data, frame.nbytes, s))
        check(driver.cuMemcpyHtoDAsync(b.buffers["wave"], self.wave_host.ctypes.data, self.wave_host.nbytes, s))
        self.kernel.glance(self.frames.base, (self.T, h, w), b.buffers["glance"], cfg.glance_size, cfg.mean, cfg.std,
                           count=1, start=slot, fp16=self._half("glance"), stream=s)
        outputs = {one: ring.slot(slot) if ring.direct else b.buffers[one]
                   for (window, one), ring in zip(RINGS, self.rings.values())}
        b.execute("glance_visual", outputs)
        b.execute("glance_audio", outputs)
        for (window, one), ring in zip(RINGS, self.rings.values()):
            if ring.direct:
                ring.mirror(slot, s)                     # the engine wrote the slot in place
            else:
                ring.write(slot, b.buffers[one], s)
        check(driver.cuEventRecord(ev1, s))
        check(driver.cuStreamSynchronize(s))             # the pinned staging buffers are reused by the next snippet
        timer.ms["encode_gpu"] = float(check(driver.cuEventElapsedTime(ev0, ev1)))
        return {}

    def _half(self, name: str) -> bool:
        return self.specs[name].dtype == "float16"

    # -- the decision step
    def _windows(self, start: int) -> dict[str, int]:
        return {window: ring.window(start) if ring.direct else self.b.buffers[window]
                for window, ring in self.rings.items()}

    def _bind_decision(self, start: int) -> None:
        b, windows = self.b, self._windows(start)
        b.bind("decide", windows)
        b.bind("focus_local")
        b.bind("head", windows)

    def _enqueue_decision(self, start: int) -> None:
        b, cfg, s = self.b, self.cfg, self.b.stream
        for window, ring in self.rings.items():
            if not ring.direct:
                ring.read_window(start, b.buffers[window], s)
        b.enqueue("decide")
        h, w = self.frame_shape[:2]
        self.kernel.patches(self.frames.base, (self.T, h, w), b.buffers["indices"], b.buffers["centres"], self.k,
                            cfg.patch_size / cfg.frame_size, b.buffers["patches"], cfg.patch_size, cfg.mean, cfg.std,
                            start=start, fp16=self._half("patches"), stream=s)
        b.enqueue("focus_local")
        b.enqueue("head")
        for name, host in self.out_host.items():
            check(self.driver.cuMemcpyDtoHAsync(host.ctypes.data, b.buffers[name], host.nbytes, s))

    def _capture(self, start: int):
        """An instantiated CUDA graph of the decision step for window ``start``."""
        driver, s = self.driver, self.b.stream
        self._bind_decision(start)                       # bound once, outside the capture
        self._enqueue_decision(start)                    # warm-up: TensorRT's first enqueue does setup work
        check(driver.cuStreamSynchronize(s))
        check(driver.cuStreamBeginCapture(s, driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
        try:
            self._enqueue_decision(start)
        finally:
            graph = check(driver.cuStreamEndCapture(s))
        try:
            return check(driver.cuGraphInstantiate(graph, 0))
        finally:
            check(driver.cuGraphDestroy(graph))

    def _graph(self, start: int):
        """The graph for window ``start``, captured on first use; None to run eagerly."""
        if self.graph_failed:
            return None
        if start not in self.graphs:
            try:
                self.graphs[start] = self._capture(start)
            except EngineError as exc:                   # CUDA errors are EngineErrors too (CudaError)
                self._end_failed_capture()
                log.warning("CUDA graph capture failed (%s): running the decision step without a graph", exc)
                self.graph_failed = True
                return None
        return self.graphs[start]

    def _end_failed_capture(self) -> None:
        """After a failed capture (already ended by ``_capture``'s finally, its graph discarded), make
        sure nothing is pending on the stream before the eager path goes on (trtexec clears the error too)."""
        check(self.driver.cuStreamSynchronize(self.b.stream))

    @on_device
    def decide(self, ring, timer: Timer) -> dict:
        driver, s = self.driver, self.b.stream
        start = ring.count % self.T                      # oldest snippet of the window
        ev0, ev1 = self.events[:2]
        graph = self._graph(start)
        check(driver.cuEventRecord(ev0, s))
        if graph is not None:
            check(driver.cuGraphLaunch(graph, s))
        else:
            self._bind_decision(start)
            self._enqueue_decision(start)
        check(driver.cuEventRecord(ev1, s))
        check(driver.cuStreamSynchronize(s))
        timer.ms["decision_gpu"] = float(check(driver.cuEventElapsedTime(ev0, ev1)))
        out = {n: np.array(h[0]) for n, h in self.out_host.items()}       # batch 1; copies: the pinned buffers are reused
        out["boxes"] = boxes_xyxy(out["centres"], self.cfg.patch_size / self.cfg.frame_size, *self.frame_shape[:2])
        return out

    def _drop_graphs(self) -> None:
        for exe in self.graphs.values():
            check(self.driver.cuGraphExecDestroy(exe))
        self.graphs.clear()

    def close(self) -> None:
        """Destroy the graphs, events and kernel module; drop every view of pinned memory (the backend
        frees it next). Called by TrtBackend.close with the context current."""
        if self.kernel is None:
            return
        self._drop_graphs()
        for e in self.events:
            self.driver.cuEventDestroy(e)
        self.events = []
        self.kernel.close()
        self.kernel = None
        self.frame_host, self.wave_host, self.out_host = None, None, {}
