"""Will TensorRT's ONNX parser take this graph? A static check against the parser's own table.

``trt_onnx_ops.json`` is onnx-tensorrt's ``docs/operators.md`` as data (source and commit inside):
per operator, supported or not, the data types it lists, and its restrictions. ``check_graph``
flags nodes whose operator the parser lacks, whose data tensors have a type the table does not
list (types from ONNX shape inference), or that live in a non-default domain (plugins only).
This runs at export time, on a machine without TensorRT, so a bundle that cannot become an
engine fails there and not on the Jetson minutes into a build.

Which tensors are "data": the table's type column describes the operator's main type
parameter, not index or shape inputs (``Gather`` indices, ``Resize`` sizes) nor boolean
results (``Equal``). So per node we take the ONNX schema's type parameter that its first
output shares with an input (``T`` of ``Where``), else the one of input 0, and check every
input and output bound to it. Q/DQ use input 0 (the float resp. quantized side), and type
converters (``Cast``, ``ConstantOfShape``...) check their output too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from ..errors import BundleError

TABLE_PATH = Path(__file__).with_name("trt_onnx_ops.json")
DEFAULT_DOMAINS = ("", "ai.onnx")
# TensorRT 10.0's table says opset 9..20; later 10.x tables say more, but JetPack 6 has 10.3.
OPSET_MIN, OPSET_MAX = 9, 20
_CONVERTERS = {"Cast", "CastLike", "ConstantOfShape", "EyeLike", "RandomNormalLike", "RandomUniformLike",
               "Bernoulli", "Multinomial"}
_INPUT0 = {"QuantizeLinear", "DequantizeLinear"}
_QUANTIZED = {"INT8", "INT4", "FP8", "FP4"}


@functools.lru_cache(maxsize=1)
def load_table() -> dict:
    return json.loads(TABLE_PATH.read_text())


def _dtype_words() -> dict[int, str]:
    from onnx import TensorProto as T
    words = {T.FLOAT: "FP32", T.FLOAT16: "FP16", T.BFLOAT16: "BF16", T.DOUBLE: "FP64", T.INT8: "INT8",
             T.UINT8: "UINT8", T.INT16: "INT16", T.UINT16: "UINT16", T.INT32: "INT32", T.UINT32: "UINT32",
             T.INT64: "INT64", T.UINT64: "UINT64", T.BOOL: "BOOL", T.STRING: "STRING",
             T.COMPLEX64: "COMPLEX64", T.COMPLEX128: "COMPLEX128", T.FLOAT8E4M3FN: "FP8"}
    for name, word in (("INT4", "INT4"), ("UINT4", "UINT4"), ("FLOAT4E2M1", "FP4"),
                       ("FLOAT8E5M2", "FP8E5M2"), ("FLOAT8E4M3FNUZ", "FP8E4M3FNUZ")):
        if hasattr(T, name):
            words[getattr(T, name)] = word
    return words


def _graphs(graph):
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graphs(g)


def _tensor_types(model) -> dict[str, int]:
    types = {}
    for g in _graphs(model.graph):
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types[vi.name] = vi.type.tensor_type.elem_type
        for init in g.initializer:
            types[init.name] = init.data_type
    return types


def _data_tensors(node, opset: int) -> list[str]:
    """Names of the node's tensors that carry the operator's main type (see module doc)."""
    import onnx.defs
    ins, outs = list(node.input), list(node.output)
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:                       # unknown op or opset: fall back to the first input/output
        return [t for t in (ins[:1] or outs[:1]) if t]

    def bind(formals, actuals):
        out = []
        for i, name in enumerate(actuals):
            if formals:
                out.append((formals[min(i, len(formals) - 1)].type_str, name))
        return out

    bin_, bout = bind(schema.inputs, ins), bind(schema.outputs, outs)
    is_param = lambda s: not s.startswith("tensor(") and not s.startswith("seq(")
    in_params = {s for s, _ in bin_}
    params = set()
    if node.op_type in _INPUT0 or node.op_type in _CONVERTERS:
        params |= {s for s, _ in bin_[:1] if is_param(s)}
        if node.op_type in _CONVERTERS:
            params |= {s for s, _ in bout[:1] if is_param(s)}
    elif bout and is_param(bout[0][0]) and (bout[0][0] in in_params or not bin_):
        params.add(bout[0][0])
    elif bin_ and is_param(bin_[0][0]):
        params.add(bin_[0][0])
    return [name for s, name in bin_ + bout if s in params and name]


def check_graph(model, stage: str) -> list[str]:
    """Problems that would stop TensorRT's ONNX parser, one line each (empty list = fine)."""
    import onnx
    table = load_table()["operators"]
    words = _dtype_words()
    problems = []
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    if opset is not None and not OPSET_MIN <= opset <= OPSET_MAX:
        problems.append(f"{stage}: ONNX opset {opset} is outside {OPSET_MIN}..{OPSET_MAX}, "
                        f"what TensorRT 10.x's parser documents for every 10.x release")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:                       # keep whatever type information the model already has
        inferred = model
    types = _tensor_types(inferred)
    consumers: dict[str, set[str]] = {}
    for g in _graphs(inferred.graph):
        for node in g.node:
            for t in node.input:
                consumers.setdefault(t, set()).add(node.op_type)

    index = 0
    for g in _graphs(inferred.graph):
        for node in g.node:
            index += 1
            name = node.name or f"#{index}"
            data = _data_tensors(node, opset or OPSET_MAX)
            dtypes = [(t, words.get(types[t], f"type{types[t]}")) for t in data if t in types]
            main = dtypes[0][1] if dtypes else "dtype unknown"
            where = f"{stage}: node '{name}' ({node.op_type}, {main})"
            if node.domain not in DEFAULT_DOMAINS:
                problems.append(f"{where}: domain '{node.domain}' is not ONNX's default domain; "
                                f"TensorRT's parser would need a plugin for it")
                continue
            row = table.get(node.op_type)
            if row is None or not row["supported"]:
                why = "not in" if row is None else "marked unsupported in"
                extra = f" ({row['restrictions']})" if row and row["restrictions"] else ""
                problems.append(f"{where}: operator {why} the TensorRT ONNX parser's table{extra}")
                continue
            if not row["dtypes"]:
                continue
            for tensor, word in dtypes:
                if word in row["dtypes"]:
                    continue
                # quantized weights held in a Constant and fed only to DequantizeLinear are the Q/DQ pattern
                if node.op_type == "Constant" and word in _QUANTIZED and consumers.get(tensor) == {"DequantizeLinear"}:
                    continue
                problems.append(f"{where}: tensor '{tensor}' is {word}; the TensorRT ONNX parser lists "
                                f"{', '.join(row['dtypes'])} for {node.op_type}")
    return problems


def require_supported(models: dict) -> None:
    """Raise BundleError naming the first stage/node TensorRT's parser would reject."""
    for stage, model in models.items():
        problems = check_graph(model, stage)
        if problems:
            more = f" (+{len(problems) - 1} more in this stage)" if len(problems) > 1 else ""
            src = load_table()["source"]
            raise BundleError(
                f"stage {stage} would not build with TensorRT: {problems[0]}{more}",
                hint=f"change the export so it uses only supported operators and types (opset "
                     f"{OPSET_MIN}..{OPSET_MAX}, default domain); the table is avgn_edge/export/{TABLE_PATH.name} "
                     f"(onnx-tensorrt {src['path']} for TensorRT {src['tensorrt_version']})")
