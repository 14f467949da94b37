"""``tensorrt`` on the emulated GPU: exactly the parts avgn-edge uses, as strict as the real ones.

``module(version)`` makes a ``tensorrt`` module for one TensorRT version (``AVGN_EMULATE_TRT_VERSION``,
default 10.3.0 as on JetPack 6; 11.x drops the weak-typing names, as TensorRT 11 did). Names
are those of the real Python bindings (tests/test_emulator_trt.py checks every one against
tests/data/tensorrt-python-names). The behaviour (trt_build.py, trt_engine.py):

* the first logger handed to a Builder or Runtime is the process-wide one, as in TensorRT:
  later ones are ignored, with a warning through the first;
* the ONNX parser refuses operators and types outside onnx-tensorrt's table
  (avgn_edge/export/trt_onnx_ops.json) the way the parser does: ``parse`` returns False and
  ``get_error(i)`` names the node;
* a strongly typed network refuses the FP16/INT8 builder flags (they do not exist on 11.x);
  dynamic inputs need an optimization profile; the plan carries the TensorRT version and the
  device, and ``deserialize_cuda_engine`` returns None for another version, another device or
  corrupt bytes;
* ``set_tensor_address`` returns False for an unknown name or an address not 256-byte aligned,
  ``execute_async_v3`` returns False while a tensor is unbound or (first enqueue, or a new input
  shape) while the stream is capturing, and otherwise queues the engine's ONNX graph, run by
  ONNX Runtime on the emulated memory, in stream order (capturable into a CUDA graph);
* trt_rules.py: a graph replay after its context was re-bound or destroyed is refused, an
  optimization profile per context, cudart's last error; trt_qdq.py: TensorRT's Q/DQ rules
  (zero point 0, constant scales, per-channel only on weights), checked by the parser.
"""

from __future__ import annotations

import enum
import importlib.machinery
import os
import sys
import types

DEFAULT_VERSION = "10.3.0"
VERSION_ENV = "AVGN_EMULATE_TRT_VERSION"


class _Enum(enum.IntEnum):
    """pybind11-style enum: ``str(DataType.HALF) == "DataType.HALF"``."""

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"

    def __repr__(self):
        return f"<{type(self).__name__}.{self.name}: {self.value}>"


def _enum(name: str, names) -> type:
    return _Enum(name, {n: i for i, n in enumerate(names)} if not isinstance(names, dict) else names)


Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])


class ILogger:
    Severity = Severity

    def __init__(self):
        pass

    def log(self, severity, msg):          # pure virtual in TensorRT
        raise NotImplementedError


class Logger(ILogger):
    """TensorRT's default logger: prints what is at least as severe as ``min_severity``."""
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = Severity

    def __init__(self, min_severity=Severity.WARNING):
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity, msg):
        if severity <= self.min_severity:
            print(f"[TRT] [{'FEWIV'[int(severity)]}] {msg}", file=sys.stderr)


class Lib:
    """One loaded TensorRT: its version, enums and the process-wide logger."""

    def __init__(self, version: str, enums: dict):
        self.version, self.major = version, int(version.split(".")[0])
        self.logger: ILogger | None = None
        for k, v in enums.items():
            setattr(self, k, v)

    def adopt(self, logger: ILogger, who: str) -> None:
        if not isinstance(logger, ILogger):
            raise TypeError(f"{who}(): incompatible function arguments: logger must be a tensorrt.ILogger")
        if self.logger is None:
            self.logger = logger
        elif logger is not self.logger:
            self.log(Severity.WARNING, f"The logger passed into {who} differs from one already provided for an "
                                       "existing builder, runtime, or refitter. Uses of the global logger, returned "
                                       "by nvinfer1::getLogger(), will return the existing value.")

    def log(self, severity, msg: str) -> None:
        if self.logger is not None:
            self.logger.log(severity, msg)

    def error(self, msg: str) -> None:
        self.log(Severity.ERROR, msg)


WEAK_TYPING_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4", "OBEY_PRECISION_CONSTRAINTS",
                     "PREFER_PRECISION_CONSTRAINTS")


def module(version: str | None = None) -> types.ModuleType:
    """A fresh ``tensorrt`` module for ``version`` (default: $AVGN_EMULATE_TRT_VERSION or 10.3.0)."""
    from . import trt_build, trt_engine
    version = version or os.environ.get(VERSION_ENV, DEFAULT_VERSION)
    major = int(version.split(".")[0])
    flags = (list(WEAK_TYPING_FLAGS) if major < 11 else []) + [
        "DEBUG", "REFIT", "DISABLE_TIMING_CACHE", "SPARSE_WEIGHTS", "DIRECT_IO", "VERSION_COMPATIBLE",
        "EXCLUDE_LEAN_RUNTIME", "STRIP_PLAN"]
    enums = {
        "DataType": _enum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5,
                                       "FP8": 6, "BF16": 7, "INT64": 8, "INT4": 9}),
        "TensorIOMode": _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"]),
        "NetworkDefinitionCreationFlag": _enum("NetworkDefinitionCreationFlag",
                                               {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if major < 11
                                               else {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1,
                                                     "PREFER_AOT_PYTHON_PLUGINS": 2}),     # NvInfer.h v11.1
        "BuilderFlag": _enum("BuilderFlag", flags),
        "MemoryPoolType": _enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                   "DLA_GLOBAL_DRAM", "TACTIC_DRAM"]),
        "ExecutionContextAllocationStrategy": _enum("ExecutionContextAllocationStrategy",
                                                    ["STATIC", "ON_PROFILE_CHANGE", "USER_MANAGED"]),
        "ErrorCode": _enum("ErrorCode", ["SUCCESS", "INTERNAL_ERROR"] + (["MEM_ALLOC_FAILED"] if major < 11 else []) + [
                                         "MODEL_DESERIALIZE_FAILED",
                                         "INVALID_VALUE", "INVALID_GRAPH", "INVALID_NODE", "UNSUPPORTED_GRAPH",
                                         "UNSUPPORTED_NODE", "UNSUPPORTED_NODE_ATTR", "UNSUPPORTED_NODE_INPUT",
                                         "UNSUPPORTED_NODE_DATATYPE", "UNSUPPORTED_NODE_DYNAMIC",
                                         "UNSUPPORTED_NODE_SHAPE", "REFIT_FAILED"]),
    }
    lib = Lib(version, enums)
    mod = types.ModuleType("tensorrt", "TensorRT on avgn-edge's emulated GPU (see avgn_edge/emulator/tensorrt.py)")
    mod.__version__, mod.EMULATED, mod.__lib__ = version, True, lib
    mod.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)      # importlib.util.find_spec works
    mod.ILogger, mod.Logger, mod.Dims = ILogger, Logger, trt_build.Dims
    for name, value in enums.items():
        setattr(mod, name, value)
    for cls in (trt_build.Builder, trt_build.OnnxParser, trt_engine.Runtime):
        setattr(mod, cls.__name__, type(cls.__name__, (cls,), {"_lib": lib, "__module__": "tensorrt"}))
    for cls in (trt_build.INetworkDefinition, trt_build.IBuilderConfig, trt_build.IOptimizationProfile,
                trt_build.ITimingCache, trt_build.IHostMemory, trt_build.ParserError, trt_engine.ICudaEngine,
                trt_engine.IExecutionContext):
        setattr(mod, cls.__name__, cls)
    return mod
