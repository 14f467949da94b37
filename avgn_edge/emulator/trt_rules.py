"""Rules of TensorRT on a device that the emulated runtime enforces (used by trt_engine.py).

* Graph replay: TensorRT ties a captured CUDA graph to the state of the execution context it
  was captured from (developer guide, "CUDA Graphs"); NVIDIA's TensorRT-Edge-LLM re-binds a
  context to a graph's bindings before every replay. A replay after the context was re-bound or
  re-shaped, or after it was destroyed, fails here (the context is lost, as after an illegal
  address) where a device would silently read or write the wrong memory.
* Destroying a context while a graph still uses it is recorded in ``VIOLATIONS`` (the gpu-marked
  tests' census fails on it; a device would dangle).
* Optimization profiles per context (NvInferRuntime.h: "each execution context in concurrent use
  must use a separate optimization profile"): shapes are checked against the active profile, and
  a context is refused while another context of its engine, on the same profile, has work pending
  on another stream.
* cudart's per-thread last error: a CUDA failure inside TensorRT during a capture stays set and
  the next enqueue on the thread reports it, until ``cudaGetLastError`` clears it.
"""

from __future__ import annotations

import threading
import weakref

from . import streams
from .api import CudaError, R
from .device import STATE
from .trt_build import Dims

VIOLATIONS: list[str] = []
LIVE_CONTEXTS: "weakref.WeakSet" = weakref.WeakSet()      # every execution context not yet destroyed
_tls = threading.local()


class InvalidDims(Dims):
    """What TensorRT returns for a profile shape it does not have: Dims with nbDims -1 (``len`` fails)."""

    def __len__(self):
        raise ValueError("__len__() should return >= 0")

    def __getitem__(self, index):
        raise IndexError("Out of bounds")

    def __repr__(self):
        return "(invalid Dims)"


# -- contexts, graphs

def track_context(context) -> None:
    engine = context.engine
    if not hasattr(engine, "_contexts"):
        engine._contexts = weakref.WeakSet()
    engine._contexts.add(context)
    LIVE_CONTEXTS.add(context)
    weakref.finalize(context, _destroyed, id(context), engine.name, engine._lib)


def _graphs_using(context_id: int) -> int:
    n = 0
    for ctx in list(STATE.contexts.values()):
        if not ctx.alive:
            continue
        for obj in list(ctx.objects.values()):
            if isinstance(obj, streams.Graph) and any(getattr(fn, "context_id", None) == context_id
                                                      for _label, fn in obj.nodes):
                n += 1
    return n


def _destroyed(context_id: int, engine: str, lib) -> None:
    n = _graphs_using(context_id)
    if n:
        msg = (f"an execution context of TensorRT engine {engine} was destroyed while {n} CUDA graph(s) captured "
               "from it still exist (on a device they would replay freed state: destroy the graphs first)")
        VIOLATIONS.append(msg)
        lib.error(f"Error Code 3: API Usage Error ({msg})")


def captured(context, run):
    """The enqueue as a graph node: at replay the context must still exist and hold what it held at capture."""
    ref, engine = weakref.ref(context), context.engine.name
    addresses, shapes, profile = dict(context.addresses), {k: list(v) for k, v in context.shapes.items()}, context.profile

    def replay():
        c = ref()
        if c is None:
            raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"graph replay of TensorRT engine {engine}: the execution "
                                                          "context it was captured from was destroyed")
        changed = sorted(n for n in set(addresses) | set(c.addresses) if addresses.get(n) != c.addresses.get(n))
        changed += sorted(n for n in shapes if shapes[n] != c.shapes.get(n))
        if changed or profile != c.profile:
            raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS,
                            f"graph replay of TensorRT engine {engine}: its execution context was re-bound since the "
                            f"capture ({', '.join(changed) or 'profile'}); a graph is tied to the context state it was "
                            "captured from: bind the graph's tensors again before launching it")
        run()
    replay.context_id = id(context)
    return replay


def stream_or_error(lib, stream_handle):
    """The emulated stream behind a handle TensorRT was given, or None after TensorRT's own error line."""
    try:
        return streams.stream_of(stream_handle)
    except CudaError:
        lib.error("Error Code 1: Cuda Runtime (invalid resource handle)")
        return None


# -- optimization profiles

def set_profile(context, index: int, stream_handle) -> bool:
    lib, n = context._lib, max(1, len(context.engine._meta["profiles"]))
    if not 0 <= index < n:
        lib.error(f"Error Code 3: API Usage Error (Parameter check failed, condition: profileIndex >= 0 && "
                  f"profileIndex < mEngine.getNbOptimizationProfiles(). profile {index} of {n})")
        return False
    stream = stream_or_error(lib, stream_handle)
    if stream is None:
        return False
    if stream.capture is not None:
        streams.invalidate(stream.capture, "setOptimizationProfileAsync during capture")
        lib.error("Error Code 1: Cuda Runtime (operation not permitted when stream is capturing)")
        return False
    context.profile, context._ready_for = index, None
    return True


def enqueue_allowed(context, stream) -> bool:
    lib, engine = context._lib, context.engine
    profiles = engine._meta["profiles"]
    for name, dims in context.shapes.items():
        static = engine.io[name][0]["shape"]
        if -1 in static and profiles:
            lo, _, hi = profiles[context.profile][name]
            if not all(a <= d <= b for a, d, b in zip(lo, dims, hi)):
                lib.error(f"Error Code 3: API Usage Error (input {name} shape {dims} is outside optimization "
                          f"profile {context.profile} [{lo}, {hi}] of the context)")
                return False
    for other in list(getattr(engine, "_contexts", ())):
        if other is context or other.profile != context.profile or other.last_work is None:
            continue
        other_stream, op = other.last_work
        if other_stream is not stream and op is not None and not op.done:
            lib.error(f"Error Code 3: API Usage Error (two execution contexts of engine {engine.name} on optimization "
                      f"profile {context.profile} in concurrent use (work pending on another stream): each execution "
                      "context in concurrent use must use a separate optimization profile)")
            return False
    return True


# -- cudart's last error

def set_cudart_error(name: str) -> None:
    _tls.error = name


def stale_cudart_error(lib) -> bool:
    err = getattr(_tls, "error", None)
    if err is None:
        return False
    _tls.error = None
    lib.error(f"Error Code 1: Cuda Runtime ({err}: an earlier CUDA error on this thread was never cleared "
              "(cudaGetLastError))")
    return True


def cudaGetLastError():                         # noqa: N802  (cudart's name)
    """``cuda.bindings.runtime.cudaGetLastError``: the thread's last error, cleared."""
    err = getattr(_tls, "error", None)
    _tls.error = None
    return (0 if err is None else err,)
