"""The emulated TensorRT's build side: network, ONNX parser, builder config, builder, timing cache."""

from __future__ import annotations

import hashlib
import json
import os
import re

import numpy as np

from . import trt_plan
from .tensorrt import Severity

_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 3: "INT8", 2: "UINT8", 9: "BOOL", 16: "BF16"}
TRT_TO_NUMPY = {"FLOAT": "float32", "HALF": "float16", "INT32": "int32", "INT64": "int64", "INT8": "int8",
                "UINT8": "uint8", "BOOL": "bool"}


class Dims(tuple):
    """TensorRT's Dims: a sequence of ints, -1 for a dynamic dimension."""

    def __repr__(self):
        return f"({', '.join(map(str, self))})" if len(self) != 1 else f"({self[0]},)"


class IHostMemory(bytes):
    """A serialized engine or timing cache (supports the buffer protocol, like the real one)."""

    @property
    def nbytes(self) -> int:
        return len(self)


def tensor_meta(value_info) -> dict:
    t = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    syms = [d.dim_param if d.HasField("dim_param") else "" for d in t.shape.dim]
    return {"name": value_info.name, "shape": dims, "symbols": syms, "dtype": _ONNX_TO_TRT.get(t.elem_type, "FLOAT")}


class INetworkDefinition:
    def __init__(self, lib, flags: int):
        self._lib, self.flags = lib, int(flags)
        strong = lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED
        self.strongly_typed = lib.major >= 11 or bool(self.flags & (1 << int(strong)))
        self.model = None                    # the parsed ONNX ModelProto
        self.inputs: list[dict] = []
        self.outputs: list[dict] = []
        self.name = "network"

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    @property
    def num_layers(self) -> int:
        return len(self.model.graph.node) if self.model is not None else 0

    def get_flag(self, flag) -> bool:
        strong = int(self._lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        return bool(self.flags & (1 << int(flag))) or (int(flag) == strong and self.strongly_typed)


class ParserError:
    def __init__(self, code, desc: str, node: int = -1, node_name: str = "", node_operator: str = ""):
        self._code, self._desc, self._node, self._name, self._op = code, desc, node, node_name, node_operator

    def code(self):
        return self._code

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op

    def file(self) -> str:
        return "ModelImporter.cpp"

    def line(self) -> int:
        return 0

    def func(self) -> str:
        return "importModel"

    def local_function_stack(self) -> list:
        return []

    def local_function_stack_size(self) -> int:
        return 0

    def __str__(self):
        return f"In node {self._node} with name: {self._name} and operator: {self._op} ({self._code}): {self._desc}"


class OnnxParser:
    """Parses what onnx-tensorrt's table lists; stops at the first node it cannot import."""
    _lib = None

    def __init__(self, network: INetworkDefinition, logger):
        self.network, self.logger, self.errors = network, logger, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int):
        return self.errors[index] if 0 <= index < len(self.errors) else None

    def clear_errors(self):
        self.errors = []

    def parse_from_file(self, model: str) -> bool:
        import onnx
        try:
            proto = onnx.load(model)                    # resolves external weights next to the file
        except Exception as exc:
            return self._fail(self._lib.ErrorCode.MODEL_DESERIALIZE_FAILED, f"Failed to parse ONNX model from file: "
                                                                            f"{model} ({exc})")
        return self._import(proto)

    def parse(self, model, path: str | None = None) -> bool:
        import onnx
        try:
            proto = onnx.load_from_string(bytes(model))
            if path:
                from onnx.external_data_helper import load_external_data_for_model
                load_external_data_for_model(proto, os.path.dirname(path))
        except Exception as exc:
            return self._fail(self._lib.ErrorCode.MODEL_DESERIALIZE_FAILED, f"Failed to parse the ONNX model ({exc})")
        return self._import(proto)

    def _fail(self, code, desc, node=-1, name="", op="") -> bool:
        err = ParserError(code, desc, node, name, op)
        self.errors.append(err)
        self.logger.log(Severity.ERROR, f"ModelImporter.cpp: ERROR: {err}")
        return False

    def _import(self, proto) -> bool:
        from ..export.trt_support import check_graph
        codes = self._lib.ErrorCode
        problems = check_graph(proto, "onnx")
        if problems:
            text = problems[0].removeprefix("onnx: ")
            m = re.match(r"node '([^']*)' \(([^,]+),", text)
            if m is None:
                return self._fail(codes.UNSUPPORTED_GRAPH, text)
            name, op = m.groups()
            index = next((i for i, n in enumerate(proto.graph.node) if (n.name or f"#{i + 1}") == name), -1)
            code = codes.UNSUPPORTED_NODE_DATATYPE if "tensor '" in text else codes.UNSUPPORTED_NODE
            desc = (f"No importer registered for op: {op}. Attempting to import as plugin. ({text})"
                    if code == codes.UNSUPPORTED_NODE else text)
            return self._fail(code, desc, index, name, op)
        from .trt_qdq import problems as qdq_problems
        for index, name, op, text in qdq_problems(proto):       # TensorRT's explicit-quantization rules
            return self._fail(codes.UNSUPPORTED_NODE, text, index, name, op)
        weights = {i.name for i in proto.graph.initializer}
        self.network.model = proto
        self.network.name = proto.graph.name or "network"
        self.network.inputs = [tensor_meta(v) for v in proto.graph.input if v.name not in weights]
        self.network.outputs = [tensor_meta(v) for v in proto.graph.output]
        return True


class IOptimizationProfile:
    def __init__(self):
        self.shapes: dict[str, list[list[int]]] = {}
        self.valid = True

    def set_shape(self, input: str, min, opt, max) -> None:      # noqa: A002  (TensorRT's parameter names)
        dims = [list(map(int, d)) for d in (min, opt, max)]
        if len({len(d) for d in dims}) != 1 or any(not lo <= o <= hi for lo, o, hi in zip(*dims)) \
                or any(v < 0 for d in dims for v in d):
            self.valid = False
            return
        self.shapes[input] = dims

    def get_shape(self, input: str) -> list:                      # noqa: A002
        return [Dims(d) for d in self.shapes.get(input, [])]


class ITimingCache:
    MAGIC = b"AVGN-EMU-TIMING-CACHE/1\n"

    def __init__(self, owner: dict, entries: dict | None = None):
        self.owner, self.entries = owner, dict(entries or {})

    def serialize(self) -> IHostMemory:
        return IHostMemory(self.MAGIC + json.dumps({"owner": self.owner, "entries": self.entries}).encode())

    def combine(self, input_cache, ignore_mismatch: bool) -> bool:
        if input_cache.owner != self.owner and not ignore_mismatch:
            return False
        self.entries.update(input_cache.entries)
        return True

    def reset(self) -> bool:
        self.entries.clear()
        return True


class IBuilderConfig:
    def __init__(self, lib):
        from .device import STATE
        self._lib = lib
        self._pools = {lib.MemoryPoolType.WORKSPACE: STATE.device.total}
        self._flags: set = set()
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None
        self.builder_optimization_level = 3

    def set_memory_pool_limit(self, pool, pool_size: int) -> None:
        self._pools[pool] = int(pool_size)

    def get_memory_pool_limit(self, pool) -> int:
        return self._pools.get(pool, 0)

    def set_flag(self, flag) -> None:
        self._flags.add(flag)

    def clear_flag(self, flag) -> None:
        self._flags.discard(flag)

    def get_flag(self, flag) -> bool:
        return flag in self._flags

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.profiles)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile.valid or not profile.shapes:
            self._lib.error("Error Code 3: API Usage Error (Parameter check failed, condition: profile.isValid())")
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache) -> ITimingCache | None:
        blob = bytes(serialized_timing_cache)
        if not blob:
            return ITimingCache(_owner(self._lib))
        if not blob.startswith(ITimingCache.MAGIC):
            self._lib.error("Error Code 1: Serialization (the timing cache blob is corrupt)")
            return None
        try:
            doc = json.loads(blob[len(ITimingCache.MAGIC):])
        except ValueError:
            self._lib.error("Error Code 1: Serialization (the timing cache blob is corrupt)")
            return None
        return ITimingCache(doc["owner"], doc["entries"])

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if cache.owner != _owner(self._lib) and not ignore_mismatch:
            self._lib.error("Error Code 3: API Usage Error (the timing cache was created by another TensorRT version "
                            "or device)")
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


def _owner(lib) -> dict:
    from .device import NAME, STATE
    return {"trt_version": lib.version, "compute_capability": "%d.%d" % STATE.device.cc, "gpu": NAME}


class Builder:
    _lib = None

    def __init__(self, logger):
        self._lib.adopt(logger, "createInferBuilder")

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(self._lib, flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self._lib)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def __getattr__(self, name):
        if name in ("platform_has_fast_fp16", "platform_has_fast_int8") and self._lib.major < 11:
            return True
        raise AttributeError(f"'tensorrt.Builder' object has no attribute '{name}'")

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        from .device import NAME, STATE
        STATE.cudart_current()
        lib = self._lib
        if network.model is None or not network.outputs:
            lib.error("Error Code 4: API Usage Error (Network must have at least one output)")
            return None
        weak = [f.name for f in config._flags if f.name in ("FP16", "BF16", "INT8", "FP8", "INT4")]
        if network.strongly_typed and weak:
            lib.error(f"Error Code 3: API Usage Error (Parameter check failed, condition: !config.getFlag("
                      f"BuilderFlag::k{weak[0]}). The {weak[0]} builder flag is not allowed for a strongly typed "
                      "network: its precision comes from the network)")
            return None
        profiles = [p.shapes for p in config.profiles]
        for t in network.inputs:
            if -1 in t["shape"]:
                if not profiles:
                    lib.error("Error Code 4: Internal Error (Network has dynamic or shape inputs, but no "
                              "optimization profile has been defined.)")
                    return None
                for i, p in enumerate(profiles):
                    if t["name"] not in p or any(len(d) != len(t["shape"]) or any(s not in (-1, v) for s, v in
                                                                                    zip(t["shape"], d)) for d in p[t["name"]]):
                        lib.error(f"Error Code 4: Internal Error ({t['name']}: dynamic input is missing dimensions "
                                  f"in profile {i}.)")
                        return None
        onnx_bytes = network.model.SerializeToString()
        try:
            from .trt_engine import make_session
            make_session(onnx_bytes)
        except Exception as exc:                            # what no tactic could run
            lib.error(f"Error Code 10: Internal Error (Could not find any implementation for the network: {exc})")
            return None
        cache = config.timing_cache or ITimingCache(_owner(lib))
        for node in network.model.graph.node:               # one "timed tactic" per layer signature
            key = hashlib.sha1(f"{node.op_type}:{list(node.input)}".encode()).hexdigest()[:16]
            cache.entries.setdefault(key, node.op_type)
        config.timing_cache = cache
        meta = {"trt_version": lib.version, "compute_capability": "%d.%d" % STATE.device.cc, "gpu": NAME,
                "name": network.name, "inputs": network.inputs, "outputs": network.outputs, "profiles": profiles,
                "strongly_typed": network.strongly_typed, "layers": network.num_layers,
                "device_memory": _scratch_bytes(network, profiles)}
        return IHostMemory(trt_plan.encode(meta, onnx_bytes))


def _scratch_bytes(network: INetworkDefinition, profiles: list) -> int:
    """Activation memory: every intermediate tensor once, at the first profile's largest shapes, 256-B aligned."""
    import onnx
    model = onnx.ModelProto()
    model.CopyFrom(network.model)
    biggest = profiles[0] if profiles else {}
    for v in model.graph.input:
        if v.name in biggest:
            for d, n in zip(v.type.tensor_type.shape.dim, biggest[v.name][2]):
                d.dim_value = n
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:                                   # keep what the model says of itself
        pass
    io = {t["name"] for t in network.inputs + network.outputs}
    total = 0
    for v in model.graph.value_info:
        if v.name in io:
            continue
        meta = tensor_meta(v)
        n = int(np.prod([max(d, 1) for d in meta["shape"]] or [1]))
        total += -(-n * np.dtype(TRT_TO_NUMPY.get(meta["dtype"], "float32")).itemsize // 256) * 256
    return total
