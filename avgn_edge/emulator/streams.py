"""Streams, events and CUDA graphs of the emulated device.

Work enqueued on a stream is *not* done when the call returns: it waits in stream order and
runs only when something observes it (``cuStreamSynchronize``, ``cuEventSynchronize``,
``cuCtxSynchronize``, a query, a synchronous copy, freeing memory). A query that finds work
pending returns ``CUDA_ERROR_NOT_READY`` and lets the work run, so the next query succeeds: a
host buffer overwritten before its asynchronous copy ran gives the wrong data, as on a device.
The legacy default stream (handle 0) waits for, and is waited for by, every blocking stream;
``CU_STREAM_NON_BLOCKING`` streams are independent of it.

Stream capture records work into a graph instead of queueing it. Calls that are illegal while
a capture is open (synchronizing the capturing stream, device-wide synchronization, and in
global / thread-local mode allocation, synchronous copies and other unsafe calls) fail with
``CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED`` and invalidate the capture, whose end then returns
``CUDA_ERROR_STREAM_CAPTURE_INVALIDATED``. An instantiated graph replays what was captured, with
the addresses and parameters fixed at capture time.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from .api import CudaError, R, api, driver, handle, size
from .device import STATE, Context, new_handle

log = logging.getLogger(__name__)
_seq = itertools.count(1)
MODE = driver.CUstreamCaptureMode


class Op:
    __slots__ = ("seq", "label", "fn", "deps", "done", "ctx")

    def __init__(self, ctx, label, fn, deps):
        self.seq, self.ctx, self.label, self.fn = next(_seq), ctx, label, fn
        self.deps = [d for d in deps if d is not None and not d.done]
        self.done = False


class Stream:
    def __init__(self, ctx: Context, blocking: bool, handle_value: int | None = None):
        self.ctx, self.blocking = ctx, blocking
        self.handle = new_handle() if handle_value is None else handle_value
        self.last: Op | None = None
        self.capture: Capture | None = None


class Capture:
    def __init__(self, stream: Stream, mode):
        self.stream, self.mode, self.thread = stream, mode, threading.get_ident()
        self.nodes: list[tuple[str, object]] = []
        self.invalid: str | None = None


class Event:
    def __init__(self, ctx: Context, flags: int):
        self.ctx, self.handle, self.timing = ctx, new_handle(), not flags & 2   # CU_EVENT_DISABLE_TIMING
        self.op: Op | None = None
        self.time: float | None = None
        self.captured = False


class Graph:
    def __init__(self, nodes):
        self.handle, self.nodes = new_handle(), list(nodes)


class GraphExec(Graph):
    """An instantiated graph: a frozen copy of the captured nodes."""


# -- streams and the queue

def legacy(ctx: Context) -> Stream:
    if ctx.legacy is None:
        ctx.legacy = Stream(ctx, blocking=True, handle_value=0)
    return ctx.legacy


def stream_of(value) -> Stream:
    """The Stream for a handle argument (0 / CU_STREAM_LEGACY: the legacy default stream)."""
    ctx = STATE.require_context()
    h = handle(value)
    if h in (0, driver.CU_STREAM_LEGACY):
        return legacy(ctx)
    if h == driver.CU_STREAM_PER_THREAD:
        key = ("per-thread", threading.get_ident())
        if key not in ctx.objects:
            ctx.objects[key] = Stream(ctx, blocking=True)
        return ctx.objects[key]
    s = ctx.objects.get(h)
    if not isinstance(s, Stream):
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, f"{h:#x} is not a live stream of the current context")
    return s


def captures(ctx: Context) -> list[Capture]:
    return [s.capture for s in _streams(ctx) if s.capture is not None]


def _streams(ctx: Context) -> list[Stream]:
    return [o for o in ctx.objects.values() if isinstance(o, Stream)] + ([ctx.legacy] if ctx.legacy else [])


def invalidate(capture: Capture, why: str) -> None:
    if capture.invalid is None:
        capture.invalid = why
        log.debug("stream capture invalidated: %s", why)


def check_capture_safe(what: str, ctx: Context | None = None) -> None:
    """An unsafe call (allocation, synchronous copy...) while a non-relaxed capture is open on this
    thread, or a global-mode capture on any thread: refused, and the capture invalidated."""
    ctx = ctx or STATE.require_context()
    me = threading.get_ident()
    bad = [c for c in captures(ctx) if c.mode == MODE.CU_STREAM_CAPTURE_MODE_GLOBAL
           or (c.thread == me and c.mode != MODE.CU_STREAM_CAPTURE_MODE_RELAXED)]
    for c in bad:
        invalidate(c, f"{what} during stream capture")
    if bad:
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, f"{what} is not permitted while a stream is capturing")


def enqueue(stream: Stream, label: str, fn, after: Op | None = None) -> Op | None:
    """Queue ``fn`` on ``stream`` (or record it into the stream's open capture)."""
    ctx = stream.ctx
    if stream.capture is not None:
        if stream.capture.invalid:
            raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, stream.capture.invalid)
        stream.capture.nodes.append((label, fn))
        return None
    deps = [stream.last, after]
    if stream is ctx.legacy:                       # the legacy stream waits for every blocking stream
        for s in _streams(ctx):
            if s.blocking and s is not stream:
                if s.capture is not None:
                    invalidate(s.capture, "the legacy stream would wait for a capturing stream")
                    raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
                deps.append(s.last)
    elif stream.blocking and ctx.legacy is not None:
        deps.append(ctx.legacy.last)
    op = Op(ctx, label, fn, deps)
    ctx.pending[op.seq] = op
    stream.last = op
    return op


def run(op: Op | None) -> None:
    """Execute ``op`` and everything it depends on, in enqueue order."""
    if op is None or op.done:
        return
    todo, stack, seen = [], [op], set()
    while stack:
        o = stack.pop()
        if o.done or o.seq in seen:
            continue
        seen.add(o.seq)
        todo.append(o)
        stack.extend(o.deps)
    for o in sorted(todo, key=lambda x: x.seq):
        _execute(o)


def _execute(o: Op) -> None:
    ctx = o.ctx
    try:
        if ctx.sticky is None and ctx.alive:
            o.fn()
    except CudaError as exc:                        # e.g. an illegal address: the context is lost
        ctx.sticky = exc.code
        log.warning("emulated GPU: %s failed (%s); the context is unusable from now on", o.label, exc)
    finally:
        o.done = True
        ctx.pending.pop(o.seq, None)


def sync_context(ctx: Context) -> None:
    for seq in sorted(ctx.pending):
        if seq in ctx.pending:
            run(ctx.pending[seq])
    if ctx.sticky is not None:
        raise CudaError(ctx.sticky)


def sync_stream(stream: Stream) -> None:
    run(stream.last)
    if stream is stream.ctx.legacy:                  # the legacy stream also waits for the blocking streams
        for s in _streams(stream.ctx):
            if s.blocking:
                run(s.last)
    if stream.ctx.sticky is not None:
        raise CudaError(stream.ctx.sticky)


def _refuse_if_capturing(stream: Stream, what: str) -> None:
    if stream.capture is not None:
        invalidate(stream.capture, f"{what} on the capturing stream")
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, f"{what} on a capturing stream")


# -- the API

@api(outputs=1)
def cuStreamCreate(Flags):
    flags = size(Flags)
    if flags & ~int(driver.CUstream_flags.CU_STREAM_NON_BLOCKING):
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"unknown stream flags {flags:#x}")
    ctx = STATE.require_context()
    s = Stream(ctx, blocking=not flags)
    ctx.objects[s.handle] = s
    return driver.CUstream(s.handle)


@api()
def cuStreamDestroy(hStream):
    s = stream_of(hStream)
    if s is s.ctx.legacy:
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, "the legacy default stream cannot be destroyed")
    if s.capture is not None:
        invalidate(s.capture, "stream destroyed")
    del s.ctx.objects[s.handle]                      # queued work still completes (at the next synchronization)


@api()
def cuStreamSynchronize(hStream):
    s = stream_of(hStream)
    _refuse_if_capturing(s, "cuStreamSynchronize")
    sync_stream(s)


@api()
def cuStreamQuery(hStream):
    s = stream_of(hStream)
    _refuse_if_capturing(s, "cuStreamQuery")
    if s.last is not None and not s.last.done:
        run(s.last)                                  # the device moves on; the next query sees it done
        raise CudaError(R.CUDA_ERROR_NOT_READY)
    if s.ctx.sticky is not None:
        raise CudaError(s.ctx.sticky)


@api()
def cuStreamWaitEvent(hStream, hEvent, Flags):
    s, e = stream_of(hStream), event_of(hEvent)
    if e.captured:
        raise NotImplementedError("the emulated GPU does not model joining a capture through an event")
    enqueue(s, "wait event", lambda: None, after=e.op)


@api()
def cuStreamBeginCapture(hStream, mode):
    s = stream_of(hStream)
    mode = MODE(size(mode))
    if s is s.ctx.legacy:
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "the legacy default stream cannot be captured")
    if s.capture is not None:
        raise CudaError(R.CUDA_ERROR_ILLEGAL_STATE, "the stream is already capturing")
    s.capture = Capture(s, mode)


@api(outputs=1)
def cuStreamEndCapture(hStream):
    s = stream_of(hStream)
    c = s.capture
    if c is None:
        raise CudaError(R.CUDA_ERROR_ILLEGAL_STATE, "the stream is not capturing")
    if c.mode != MODE.CU_STREAM_CAPTURE_MODE_RELAXED and c.thread != threading.get_ident():
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD)
    s.capture = None
    if c.invalid:
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, c.invalid)
    g = Graph(c.nodes)
    s.ctx.objects[g.handle] = g
    return driver.CUgraph(g.handle)


@api(outputs=1)
def cuStreamIsCapturing(hStream):
    c = stream_of(hStream).capture
    status = driver.CUstreamCaptureStatus
    if c is None:
        return status.CU_STREAM_CAPTURE_STATUS_NONE
    return status.CU_STREAM_CAPTURE_STATUS_INVALIDATED if c.invalid else status.CU_STREAM_CAPTURE_STATUS_ACTIVE


@api()
def cuCtxSynchronize():
    ctx = STATE.require_context()
    for c in captures(ctx):
        invalidate(c, "cuCtxSynchronize")
    if captures(ctx):
        raise CudaError(R.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuCtxSynchronize while a stream is capturing")
    sync_context(ctx)


def event_of(value) -> Event:
    e = STATE.require_context().objects.get(handle(value))
    if not isinstance(e, Event):
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, "not a live event of the current context")
    return e


@api(outputs=1)
def cuEventCreate(Flags):
    ctx = STATE.require_context()
    e = Event(ctx, size(Flags))
    ctx.objects[e.handle] = e
    return driver.CUevent(e.handle)


@api()
def cuEventDestroy(hEvent):
    e = event_of(hEvent)
    del e.ctx.objects[e.handle]


@api()
def cuEventRecord(hEvent, hStream):
    e, s = event_of(hEvent), stream_of(hStream)
    if s.capture is not None:                        # a join point inside the capture, not a timestamp
        enqueue(s, "event record (captured)", lambda: None)
        e.captured, e.op = True, None
        return
    e.captured, e.time = False, None
    e.op = enqueue(s, "event record", lambda: setattr(e, "time", time.perf_counter()))


def _complete(e: Event) -> bool:
    if e.captured:
        raise CudaError(R.CUDA_ERROR_CAPTURED_EVENT)
    return e.op is None or e.op.done


@api()
def cuEventQuery(hEvent):
    e = event_of(hEvent)
    if not _complete(e):
        run(e.op)
        raise CudaError(R.CUDA_ERROR_NOT_READY)
    if e.ctx.sticky is not None:
        raise CudaError(e.ctx.sticky)


@api()
def cuEventSynchronize(hEvent):
    e = event_of(hEvent)
    if not _complete(e):
        run(e.op)
    if e.ctx.sticky is not None:
        raise CudaError(e.ctx.sticky)


@api(outputs=1)
def cuEventElapsedTime(hStart, hEnd):
    a, b = event_of(hStart), event_of(hEnd)
    if not (a.timing and b.timing) or a.op is None or b.op is None:
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, "both events must be recorded, with timing enabled")
    if not (_complete(a) and _complete(b)):
        raise CudaError(R.CUDA_ERROR_NOT_READY)
    return float(max(0.0, (b.time - a.time) * 1e3))


def _graph(value, kind: type):
    g = STATE.require_context().objects.get(handle(value))
    if type(g) is not kind:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"not a live {kind.__name__}")
    return g


@api(outputs=1)
def cuGraphInstantiate(hGraph, flags):
    ex = GraphExec(_graph(hGraph, Graph).nodes)
    STATE.require_context().objects[ex.handle] = ex
    return driver.CUgraphExec(ex.handle)


@api()
def cuGraphLaunch(hGraphExec, hStream):
    ex, s = _graph(hGraphExec, GraphExec), stream_of(hStream)
    nodes = list(ex.nodes)

    def replay():
        for _label, fn in nodes:
            fn()
    enqueue(s, f"graph of {len(nodes)} nodes", replay)


@api()
def cuGraphDestroy(hGraph):
    del STATE.require_context().objects[_graph(hGraph, Graph).handle]


@api()
def cuGraphExecDestroy(hGraphExec):
    del STATE.require_context().objects[_graph(hGraphExec, GraphExec).handle]
