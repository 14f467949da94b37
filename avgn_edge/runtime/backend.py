"""Backends: one small interface over ONNX Runtime and TensorRT.

    backend = open_backend(bundle, "auto", precision="fp32")
    outputs = backend.run("decide", {"gmaps": ..., "gvecs": ..., "avecs": ...})

``auto`` picks TensorRT when it is importable, a CUDA GPU is present and engines for the
bundle are built (or buildable), else ONNX Runtime. ``triton`` runs the stages on a remote
Triton Inference Server (``url=...``; runtime/triton.py); ``auto`` never picks it. Backends touch no GPU before they
are opened, and are context managers.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..bundle import Bundle
from ..errors import InputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "ort", "trt", "triton")


class Backend(Protocol):
    name: str
    precision: str

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def trt_available() -> tuple[bool, str]:
    """(usable, reason): TensorRT importable and a CUDA device present."""
    import importlib.util
    if importlib.util.find_spec("tensorrt") is None:
        return False, "TensorRT is not installed"
    try:
        from cuda.bindings import driver
        err, = driver.cuInit(0)
        if int(err) != 0:
            return False, f"no CUDA device (cuInit: {err})"
        err, n = driver.cuDeviceGetCount()
        if int(err) != 0 or n == 0:
            return False, "no CUDA device"
    except ImportError:
        return False, "cuda-python is not installed"
    return True, "TensorRT and a CUDA device are present"


def open_backend(bundle: Bundle, backend: str = "auto", precision: str = "fp32", **options) -> Backend:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}", hint=f"choose one of {', '.join(BACKENDS)}")
    if precision not in bundle.variants:
        raise InputError(f"bundle has no {precision} variant",
                         hint=f"available: {', '.join(bundle.precisions)}; add one with avgn-edge quantize")
    if backend == "auto":
        ok, why = trt_available()
        backend = "trt" if ok else "ort"
        log.info("backend auto -> %s (%s)", backend, why)
    if backend == "trt":
        from .trt import TrtBackend
        return TrtBackend(bundle, precision, **options)
    if backend == "triton":
        from .triton import TritonBackend
        return TritonBackend(bundle, precision, **options)
    from .ort import OrtBackend
    return OrtBackend(bundle, precision, **options)
