"""Backends: one small interface over ONNX Runtime and TensorRT.

    backend = open_backend(bundle, "auto", precision="fp32")
    outputs = backend.run("decide", {"gmaps": ..., "gvecs": ..., "avecs": ...})

``auto`` picks TensorRT when it is importable, a CUDA GPU is present (or emulated:
AVGN_EMULATE_GPU=1) and the bundle's engines load or build; otherwise, or when they cannot
be built, ONNX Runtime, with the reason logged. ``triton`` runs the stages on a remote Triton
Inference Server (``url=...``; runtime/triton.py); ``auto`` never picks it. Backends touch no
GPU before they are opened, and are context managers.
"""

from __future__ import annotations

import inspect
import logging
from typing import Protocol

import numpy as np

from ..bundle import Bundle
from ..errors import AvgnError, InputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "ort", "trt", "triton")


class Backend(Protocol):
    name: str
    precision: str

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def trt_available() -> tuple[bool, str]:
    """(usable, reason): TensorRT importable and a CUDA device present. Never raises: without a
    driver, cuda-bindings raises RuntimeError (DynamicLibNotFoundError), not ImportError."""
    import importlib.util
    try:
        if importlib.util.find_spec("tensorrt") is None:
            return False, "TensorRT is not installed"
        from cuda.bindings import driver
        err, = driver.cuInit(0)
        if int(err) != 0:
            return False, f"no CUDA device (cuInit: {err})"
        err, n = driver.cuDeviceGetCount()
        if int(err) != 0 or n == 0:
            return False, "no CUDA device"
    except ImportError:
        return False, "cuda-python is not installed"
    except Exception as exc:                 # no libcuda, or a driver too old for these bindings
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        return False, f"no usable CUDA driver ({type(exc).__name__}: {first})"
    from .. import emulator
    return True, "TensorRT on the emulated GPU" if emulator.active() else "TensorRT and a CUDA device are present"


def _accepted(cls, options: dict) -> dict:
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in options.items() if k in names}


def fall_back(bundle: Bundle, precision: str, why: str, **options) -> Backend:
    """``--backend auto`` when TensorRT is present but cannot serve: ONNX Runtime, with one line saying why."""
    from .ort import OrtBackend
    log.warning("backend auto -> ort (%s)", str(why).splitlines()[0])
    return OrtBackend(bundle, precision, **_accepted(OrtBackend, options))


def open_backend(bundle: Bundle, backend: str = "auto", precision: str = "fp32", **options) -> Backend:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}", hint=f"choose one of {', '.join(BACKENDS)}")
    if precision not in bundle.variants:
        raise InputError(f"bundle has no {precision} variant",
                         hint=f"available: {', '.join(bundle.precisions)}; add one with avgn-edge quantize")
    from .ort import OrtBackend
    from .trt import TrtBackend
    if backend == "auto":
        ok, why = trt_available()
        if ok:
            try:
                trt_backend = TrtBackend(bundle, precision, **_accepted(TrtBackend, options))
                log.info("backend auto -> trt (%s)", why)
                return trt_backend
            except AvgnError as exc:         # e.g. an engine that does not build: still serve, on the CPU
                return fall_back(bundle, precision, f"TensorRT cannot run this bundle here: {exc}", **options)
        else:
            log.info("backend auto -> ort (%s)", why)
        return OrtBackend(bundle, precision, **_accepted(OrtBackend, options))
    if backend == "trt":
        return TrtBackend(bundle, precision, **options)
    if backend == "triton":
        from .triton import TritonBackend
        return TritonBackend(bundle, precision, **options)
    return OrtBackend(bundle, precision, **options)
