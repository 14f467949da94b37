"""The glance pipeline on the device (TensorRT backend), batched, with pipeline.py's two methods:

    encode_batch(items, timer)  N snippets (of any streams): frames -> pinned staging -> each stream's
                                device frame ring; the crop kernel cuts each glance view into one
                                [N, 3, g, g] batch; the glance engines run once for the N; their
                                outputs are copied into each stream's feature rings
    decide_batch(rings, timer)  B windows (of B streams): decide -> crop kernel (patches) ->
                                focus_local -> head, once for the B; [B, ...] results copied out

Each window (host ring) has its own device rings (trt_windows.py). The feature rings are
mirrored (kernels/ring.py), so a window is contiguous: a single window (B = 1, the live loop) is
read in place where its slots are 256-byte aligned (TensorRT's alignment); otherwise the B
windows are gathered into the batch buffers, device to device. The crop kernel takes one ring
per launch, so it is launched once per snippet (glance) or per window (patches), into that
item's slice of the batch; engine calls are one per stage whatever B. A call larger than an
engine's profile max (the manifest's batch max) is split.

CUDA graphs, for the decision step only: one per *layout* (the streams read, by serial, and
each window's start; so its batch size too), captured lazily on first use as trtexec does it
(tensors bound outside the capture, one warm-up enqueue, then only enqueues and copies
captured), at most ``GRAPH_CACHE`` kept, least recently used destroyed first. A graph stays
tied to the execution contexts it was captured from, input shapes included, so graphs of batch
B are captured on contexts of their own whose shapes are set once to B (``GRAPH_BATCHES``
sizes at a time; the eager path keeps the backend's contexts, whose shapes change per call).
A single stream has T layouts; steady streams on a shared tick grid repeat theirs every T /
stride ticks. A single stream's windows are read in place, so its T graphs of batch 1 share one
set of contexts bound to T different addresses: TensorRT ties a graph to the context state it
was captured from, so before a graph is launched its layout is bound again on those contexts
(skipped when they already hold it), as NVIDIA's TensorRT-Edge-LLM does before each replay.
Graphs reading a stream whose memory is freed are destroyed with it. If the capture itself
fails (a CUDA or TensorRT refusal between begin and end capture) the step runs eagerly from then
on, with a one-time warning, and cudart's error state is cleared as trtexec does; a refused
binding or a failed warm-up, outside the capture, is raised as what it is.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from typing import TYPE_CHECKING

import numpy as np

from ..errors import EngineError
from ..kernels.compile import KernelCompileError
from ..kernels.cuda_driver import ALIGN, check, clear_runtime_error, on_device
from ..kernels.launch import CropKernel
from .pipeline import Timer, boxes_xyxy
from .trt_sizes import nbytes
from .trt_windows import WindowPool
from .window import ring_slots

if TYPE_CHECKING:
    from .trt import TrtBackend   # the backend builds its pipeline (TrtBackend.pipeline), not the reverse

log = logging.getLogger(__name__)
RINGS = (("gmaps", "gmap"), ("gvecs", "gvec"), ("avecs", "avec"))     # window tensor, per-snippet tensor
OUTPUTS = ("saliency", "indices", "centres", "scores")
DECISION_STAGES = ("decide", "focus_local", "head")
GRAPH_CACHE = 32             # captured decision graphs kept (a single stream needs T of them)
GRAPH_BATCHES = 4            # batch sizes with graphs (and contexts of their own) at a time
STAGING = 64 << 20           # pinned bytes for one call's frames (72 at 640x480, 10 at 1080p); more: next call


class TrtPipeline:
    def __init__(self, backend: TrtBackend):
        self.b, self.driver = backend, backend.driver
        cfg = self.cfg = backend.bundle.config
        self.T, self.k = cfg.num_snippets, cfg.top_k
        self.specs = {t.name: t for st in backend.bundle.stages.values() for t in st.inputs + st.outputs}
        self.item = {name: nbytes(t) for name, t in self.specs.items()}          # bytes of one batch item
        limit = backend.max_batch
        self.max_snippets = min(limit["glance_visual"], limit["glance_audio"])
        self.max_decisions = min(limit[s] for s in DECISION_STAGES)
        self.graphs: OrderedDict[tuple, object] = OrderedDict()
        self.graph_contexts: OrderedDict[int, dict] = OrderedDict()     # batch -> decision contexts fixed at it
        self.bound: dict[int, tuple] = {}            # batch -> the layout its graph contexts are bound to now
        self.graph_failed = not backend.cuda_graph
        self.frame_host, self.kernel, self.events = None, None, []
        with backend.cuda.current():
            try:
                self.kernel = CropKernel()
            except KernelCompileError as exc:            # NVRTC refused: a one-line error (auto falls back on it)
                raise EngineError(f"the crop kernel cannot be compiled ({str(exc).splitlines()[0]})",
                                  hint="check the CUDA toolkit headers / NVRTC version (python -m "
                                       "avgn_edge.kernels.selftest)") from exc
            try:
                self._allocate(backend)
            except BaseException:
                self.close()
                raise

    def _allocate(self, backend) -> None:
        cfg, mem = self.cfg, backend.mem
        self.pool = WindowPool(mem, self.T, {window: self.item[one] for window, one in RINGS})
        self.direct = {window: self.item[one] % ALIGN == 0 for window, one in RINGS}   # slots bindable in place
        self.wave_host = mem.pinned((self.max_snippets, cfg.audio_samples), np.float32)
        self.out_host = {n: mem.pinned(self.specs[n].at(self.max_decisions), self.specs[n].dtype) for n in OUTPUTS}
        self.events = [check(self.driver.cuEventCreate(0)) for _ in range(4)]

    @property
    def cuda(self):
        return self.b.cuda if self.kernel is not None else None

    def _half(self, name: str) -> bool:
        return self.specs[name].dtype == "float16"

    def _tidy(self) -> None:
        """Free the rings of streams that are gone, and the graphs that read freed memory (stream idle)."""
        self.pool.reap()
        if self.pool.retired:
            gone = set(self.pool.retired)
            self.pool.retired.clear()
            for key in [k for k in self.graphs if any(serial in gone for serial, _ in k)]:
                check(self.driver.cuGraphExecDestroy(self.graphs.pop(key)))

    def _staging(self, nbytes_: int) -> np.ndarray:
        """The pinned frame staging buffer, grown to at least ``nbytes_`` (stream idle)."""
        if self.frame_host is None or self.frame_host.nbytes < nbytes_:
            if self.frame_host is not None:
                self.b.mem.free(self.frame_host.ctypes.data)
            self.frame_host = None
            self.frame_host = self.b.mem.pinned((nbytes_,), np.uint8)
        return self.frame_host

    def _timed(self, name: str, timer: Timer, start, end) -> None:
        timer.ms[name] = timer.ms.get(name, 0.0) + float(check(self.driver.cuEventElapsedTime(start, end)))

    # -- snippets
    @on_device
    def encode_batch(self, items, timer: Timer) -> dict:
        """Encode checked snippets into their streams' device rings; nothing is kept on the host. A call
        holds at most max_snippets and STAGING bytes of frames, each stream's slot once and one frame
        size per stream."""
        group, taken, shapes, staged = [], set(), {}, 0
        for c, slot in zip(items, ring_slots(items)):
            ring = id(c.window.ring)
            if group and (len(group) == self.max_snippets or staged + c.frame.nbytes > STAGING or (ring, slot) in taken
                          or shapes.get(ring, c.frame.shape) != c.frame.shape):
                self._encode(group, timer)
                group, taken, shapes, staged = [], set(), {}, 0
            group.append((c, slot))
            taken.add((ring, slot))
            shapes[ring] = c.frame.shape
            staged += c.frame.nbytes
        if group:
            self._encode(group, timer)
        return {}

    def _encode(self, group, timer: Timer) -> None:
        driver, b, s, cfg = self.driver, self.b, self.b.stream, self.cfg
        streams = [self.pool.get(c.window.ring) for c, _ in group]
        for st, (c, _) in zip(streams, group):
            self.pool.frames_for(st, c.frame.shape)
        self._tidy()
        staging = self._staging(sum(c.frame.nbytes for c, _ in group))
        n, view = len(group), self.item["glance"]
        ev0, ev1 = self.events[2:]
        check(driver.cuEventRecord(ev0, s))
        offset = 0
        for st, (c, slot) in zip(streams, group):
            staging[offset:offset + c.frame.nbytes].reshape(c.frame.shape)[...] = c.frame
            check(driver.cuMemcpyHtoDAsync(st.frames.slot(slot), staging.ctypes.data + offset, c.frame.nbytes, s))
            offset += c.frame.nbytes
        self.wave_host[:n] = [c.wave for c, _ in group]
        check(driver.cuMemcpyHtoDAsync(b.buffers["wave"], self.wave_host.ctypes.data, n * self.item["wave"], s))
        for i, (st, (c, slot)) in enumerate(zip(streams, group)):
            h, w = c.frame.shape[:2]
            self.kernel.glance(st.frames.base, (self.T, h, w), b.buffers["glance"] + i * view, cfg.glance_size,
                               cfg.mean, cfg.std, count=1, start=slot, fp16=self._half("glance"), stream=s)
        for stage in ("glance_visual", "glance_audio"):
            b.set_batch(stage, n)
            b.execute(stage)
        for i, (st, (_, slot)) in enumerate(zip(streams, group)):
            for window, one in RINGS:
                st.rings[window].write(slot, b.buffers[one] + i * self.item[one], s)
        check(driver.cuEventRecord(ev1, s))
        check(driver.cuStreamSynchronize(s))             # the pinned staging buffers are reused by the next call
        self._timed("encode_gpu", timer, ev0, ev1)

    # -- decisions
    @on_device
    def decide_batch(self, rings, timer: Timer) -> list[dict]:
        self._tidy()
        out = []
        for i in range(0, len(rings), self.max_decisions):
            out += self._decide(rings[i:i + self.max_decisions], timer)
        return out

    def _decide(self, rings, timer: Timer) -> list[dict]:
        driver, s = self.driver, self.b.stream
        streams = [self.pool.find(r) for r in rings]
        layout = tuple((st.serial, r.start) for st, r in zip(streams, rings))   # start: the window's oldest slot
        ev0, ev1 = self.events[:2]
        graph = self._graph(layout, streams)
        if graph is not None:                            # the graph's contexts hold this layout's bindings
            self._bind_graph_contexts(layout, streams)
        check(driver.cuEventRecord(ev0, s))
        if graph is not None:
            check(driver.cuGraphLaunch(graph, s))
        else:
            self._bind_decision(layout, streams)
            self._enqueue_decision(layout, streams)
        check(driver.cuEventRecord(ev1, s))
        check(driver.cuStreamSynchronize(s))
        self._timed("decision_gpu", timer, ev0, ev1)
        box_frac = self.cfg.patch_size / self.cfg.frame_size
        out = []
        for i, st in enumerate(streams):
            d = {n: np.array(h[i]) for n, h in self.out_host.items()}          # copies: the pinned buffers are reused
            d["boxes"] = boxes_xyxy(d["centres"], box_frac, *st.frame_shape[:2])
            out.append(d)
        return out

    def _in_place(self, window: str, layout) -> bool:
        return len(layout) == 1 and self.direct[window]

    def _bind_decision(self, layout, streams, contexts=None) -> None:
        """Bind for ``layout``; the eager path (no ``contexts``) sets the backend contexts' shapes first."""
        b, start = self.b, layout[0][1]
        windows = {w: streams[0].rings[w].window(start) if self._in_place(w, layout) else b.buffers[w]
                   for w, _ in RINGS}
        if contexts is None:
            for stage in DECISION_STAGES:
                b.set_batch(stage, len(layout))
        b.bind("decide", windows, contexts)
        b.bind("focus_local", None, contexts)
        b.bind("head", windows, contexts)

    def _enqueue_decision(self, layout, streams, contexts=None) -> None:
        b, cfg, s = self.b, self.cfg, self.b.stream
        for window, one in RINGS:
            if not self._in_place(window, layout):       # gather the B windows into the batch buffer
                size = self.T * self.item[one]
                for i, (st, (_, start)) in enumerate(zip(streams, layout)):
                    st.rings[window].read_window(start, b.buffers[window] + i * size, s)
        b.enqueue("decide", contexts)
        box_frac, P = cfg.patch_size / cfg.frame_size, cfg.patch_size
        for i, (st, (_, start)) in enumerate(zip(streams, layout)):
            h, w = st.frame_shape[:2]
            self.kernel.patches(st.frames.base, (self.T, h, w), b.buffers["indices"] + i * self.item["indices"],
                                b.buffers["centres"] + i * self.item["centres"], self.k, box_frac,
                                b.buffers["patches"] + i * self.item["patches"], P, cfg.mean, cfg.std,
                                start=start, fp16=self._half("patches"), stream=s)
        b.enqueue("focus_local", contexts)
        b.enqueue("head", contexts)
        for name, host in self.out_host.items():
            check(self.driver.cuMemcpyDtoHAsync(host.ctypes.data, b.buffers[name], len(layout) * self.item[name], s))

    def _bind_graph_contexts(self, layout, streams) -> None:
        n = len(layout)
        if self.bound.get(n) != layout:
            self.bound.pop(n, None)
            self._bind_decision(layout, streams, self.graph_contexts[n])
            self.bound[n] = layout

    def _capture(self, layout, streams, contexts):
        """An instantiated CUDA graph of the decision step for ``layout`` (bound and warmed up before).
        If the body raises, a graph that the end of the capture still returned is destroyed."""
        driver, s = self.driver, self.b.stream
        check(driver.cuStreamBeginCapture(s, driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
        try:
            self._enqueue_decision(layout, streams, contexts)
        except BaseException:
            err, graph = driver.cuStreamEndCapture(s)
            if int(err) == 0 and graph is not None:
                driver.cuGraphDestroy(graph)
            raise
        graph = check(driver.cuStreamEndCapture(s))
        try:
            return check(driver.cuGraphInstantiate(graph, 0))
        finally:
            check(driver.cuGraphDestroy(graph))

    def _contexts_for(self, n: int) -> dict:
        """The decision contexts fixed at batch ``n`` (made on first use; the least recently used size
        goes, with its graphs, when GRAPH_BATCHES sizes are in use)."""
        if n in self.graph_contexts:
            self.graph_contexts.move_to_end(n)
            return self.graph_contexts[n]
        if len(self.graph_contexts) == GRAPH_BATCHES:
            old, _ = self.graph_contexts.popitem(last=False)
            self.bound.pop(old, None)
            for layout in [k for k in self.graphs if len(k) == old]:
                check(self.driver.cuGraphExecDestroy(self.graphs.pop(layout)))
        self.graph_contexts[n] = self.b.fixed_contexts(DECISION_STAGES, n)
        return self.graph_contexts[n]

    def _graph(self, layout, streams):
        """The graph for ``layout``, captured on first use; None to run eagerly."""
        if self.graph_failed:
            return None
        if layout in self.graphs:
            self.graphs.move_to_end(layout)
            return self.graphs[layout]
        contexts = self._contexts_for(len(layout))
        self.bound.pop(len(layout), None)
        self._bind_decision(layout, streams, contexts)   # tensors bound once, outside the capture
        self.bound[len(layout)] = layout
        self._enqueue_decision(layout, streams, contexts)   # warm-up: TensorRT's first enqueue does setup work
        check(self.driver.cuStreamSynchronize(self.b.stream))
        try:
            exe = self._capture(layout, streams, contexts)
        except EngineError as exc:                       # CUDA errors are EngineErrors too (CudaDriverError)
            clear_runtime_error()                        # cudart's last error, as trtexec clears it
            check(self.driver.cuStreamSynchronize(self.b.stream))   # nothing pending before the eager path
            # str: a record holding the exception would keep its frames, and the contexts in them, alive
            log.warning("CUDA graph capture failed (%s): running the decision step without a graph", str(exc))
            self.graph_failed = True
            self._drop_graphs()
            return None
        self.graphs[layout] = exe
        while len(self.graphs) > GRAPH_CACHE:
            check(self.driver.cuGraphExecDestroy(self.graphs.popitem(last=False)[1]))
        return exe

    def _drop_graphs(self) -> None:
        for exe in self.graphs.values():
            check(self.driver.cuGraphExecDestroy(exe))
        self.graphs.clear()
        self.graph_contexts.clear()
        self.bound.clear()

    def close(self) -> None:
        """Destroy the graphs, events and kernel module; drop every view of pinned memory (the backend
        frees it and the rings next). Called by TrtBackend.close with the context current."""
        if self.kernel is None:
            return
        self._drop_graphs()
        for e in self.events:
            self.driver.cuEventDestroy(e)
        self.events = []
        self.kernel.close()
        self.kernel = None
        self.frame_host, self.wave_host, self.out_host = None, None, {}
