"""An emulated CUDA device and TensorRT: the GPU path of avgn-edge, run where there is no GPU.

    AVGN_EMULATE_GPU=1 avgn-edge demo --backend trt --precision fp16

A plugin standing above the product: no product module imports it. With ``AVGN_EMULATE_GPU=1``
the command-line entry installs it (``deps.start_requested``; a library calls ``activate()``):
``import tensorrt``, ``from cuda.bindings import driver`` (and cudart's ``runtime``) and
``require("cuda.bindings.driver")`` then resolve to it, while ``cuda.bindings.nvrtc`` stays the real NVRTC (it needs no GPU), so
the crop kernel is a real cubin. It is a strict stand-in for exactly the parts of the driver
API and TensorRT that avgn-edge uses, following their documented rules (each rule has a test
in tests/emulator/test_emulator*.py that shows it refusing what a device refuses):

    api.py          real enum and handle types, argument conversion, (CUresult, ...) results
    device.py       cuInit, device queries, primary context, current context per CPU thread
    memory.py       device and pinned arenas: 512-B aligned, freed memory poisoned and refused
    copies.py       allocation and copies (pageable vs pinned, checked device ranges)
    streams.py      stream order, lazy execution, events, stream capture and CUDA graphs
    kernels.py      cubin loading (ELF for this SM), launches; host_kernels.py runs the .cu's host build
    tensorrt.py     the tensorrt module (trt_build.py, trt_engine.py, trt_plan.py): engines run
                    their ONNX with ONNX Runtime on the emulated memory; the parser judges graphs by
                    its own table (trt_parser.py, trt_parser_ops.json), not the product's

Nothing it measures is a GPU figure: ``avgn-edge check`` and ``bench`` label emulated results
(the product learns of it only through deps.gpu_emulated / deps.gpu_stand_in).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from ..deps import EMULATED_GPU_NAME

ENV = "AVGN_EMULATE_GPU"
LABEL = EMULATED_GPU_NAME   # the product's seam (deps.py) names the stand-in
log = logging.getLogger(__name__)
_saved: dict[str, object] = {}
_TARGETS = ("cuda.bindings.driver", "cuda.bindings.runtime", "tensorrt")
_ATTRS = ("driver", "runtime")              # cuda.bindings' attributes for the two modules


def requested() -> bool:
    """True when $AVGN_EMULATE_GPU asks for the emulator."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def active() -> bool:
    """True while ``cuda.bindings.driver`` is the emulator."""
    return getattr(sys.modules.get("cuda.bindings.driver"), "EMULATED", False)


def activate(trt_version: str | None = None) -> None:
    """Make ``tensorrt`` and ``cuda.bindings.driver`` the emulator (idempotent)."""
    from . import cudart, driver, tensorrt
    trt = tensorrt.module(trt_version)
    if not active():
        for name in _TARGETS:
            _saved[name] = sys.modules.get(name)
        for attr in _ATTRS:
            _saved["attr." + attr] = getattr(sys.modules.get("cuda.bindings"), attr, None)
    sys.modules["cuda.bindings.driver"] = sys.modules["cuda.bindings"].driver = driver
    sys.modules["cuda.bindings.runtime"] = sys.modules["cuda.bindings"].runtime = cudart
    sys.modules["tensorrt"] = trt


def activate_requested() -> None:
    """Activate for $AVGN_EMULATE_GPU (deps.start_requested calls it); a missing extra is one warning line."""
    from ..errors import MissingDependency
    try:
        activate()
    except MissingDependency as exc:
        log.warning("%s is set but the emulated GPU cannot start: %s (%s)", ENV, exc, exc.hint)


def deactivate() -> None:
    """Put back what was there before ``activate`` (the emulated device's state is kept)."""
    if not active():
        return
    for name in _TARGETS:
        if _saved.get(name) is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = _saved[name]
    package = sys.modules.get("cuda.bindings")
    if package is not None:
        for attr in _ATTRS:
            if _saved.get("attr." + attr) is None:
                package.__dict__.pop(attr, None)
            else:
                setattr(package, attr, _saved["attr." + attr])
    _saved.clear()


@contextlib.contextmanager
def emulated(trt_version: str | None = None):
    """The emulator for a block of code, and for the subprocesses it starts ($AVGN_EMULATE_GPU=1)."""
    was_active, old_env = active(), os.environ.get(ENV)
    old_trt = sys.modules.get("tensorrt")
    activate(trt_version)
    os.environ[ENV] = "1"
    try:
        yield sys.modules["tensorrt"]
    finally:
        if old_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old_env
        if was_active:
            sys.modules["tensorrt"] = old_trt
        else:
            deactivate()


def announce() -> None:
    """Say once per process that the GPU is emulated (device.py calls it at the first cuInit)."""
    from .device import announce as _announce
    _announce()


def describe() -> dict:
    """What ``check``/``bench`` report about the device when the emulator is active."""
    from .driver import describe as _describe
    return _describe()
