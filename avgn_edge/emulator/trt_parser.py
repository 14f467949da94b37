"""What the emulated TensorRT's ONNX parser accepts: its own table, not the product's.

``trt_parser_ops.json`` holds, per TensorRT major the emulator stands in for, onnx-tensorrt's
``docs/operators.md`` as data (operator -> supported, types; the source of each is named in the
file, made by scripts/emulator-parser-table.py). The product checks its exports against a table of
its own (export/trt_onnx_ops.json, another revision); were the emulator to ask the product, "TensorRT
accepts our graph" would confirm itself. A graph is refused, as the real parser refuses it, for:

* an opset outside the documented range;
* a node outside ONNX's default domain (the parser would need a plugin);
* an operator the table lacks or marks unsupported;
* a data type the table does not list for the operator. The type looked at is the node's first
  input's (its output's for ConstantOfShape and nodes without inputs); quantized constants that
  only feed DequantizeLinear are the Q/DQ pattern and pass.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE = Path(__file__).with_name("trt_parser_ops.json")
_OUTPUT_TYPED = {"ConstantOfShape"}           # input 0 is a shape; the type documented is the output's
_QUANTIZED = {"INT8", "INT4", "FP8", "FP4"}


@functools.lru_cache(maxsize=None)
def table(version: str) -> dict:
    """The table for a TensorRT version string ("10.3.0", "11.4.0.106"): its major's."""
    tables = json.loads(TABLE.read_text())
    major = version.split(".")[0]
    if major not in tables:
        from ..errors import EngineError
        raise EngineError(f"the emulated TensorRT {version} has no parser table (it has TensorRT "
                          f"{', '.join(m + '.x' for m in tables)})", hint="set AVGN_EMULATE_TRT_VERSION to one of them")
    return tables[major]


def _words() -> dict[int, str]:
    from onnx import TensorProto as T
    words = {T.FLOAT: "FP32", T.FLOAT16: "FP16", T.BFLOAT16: "BF16", T.DOUBLE: "DOUBLE", T.INT8: "INT8",
             T.UINT8: "UINT8", T.INT32: "INT32", T.INT64: "INT64", T.BOOL: "BOOL", T.FLOAT8E4M3FN: "FP8"}
    for name, word in (("INT4", "INT4"), ("FLOAT4E2M1", "FP4")):
        if hasattr(T, name):
            words[getattr(T, name)] = word
    return words


def _subgraphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _subgraphs(g)


def problems(model, version: str) -> list[str]:
    """Why the parser of TensorRT ``version`` refuses ``model``: one line each, the first decisive."""
    import onnx
    t = table(version)
    lo, hi = t["opset"]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and not lo <= opset <= hi:
        return [f"onnx: ONNX opset {opset} is outside {lo}..{hi}, what TensorRT {version}'s parser supports"]
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:
        pass
    types, feeds = {}, {}
    for g in _subgraphs(model.graph):
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types[vi.name] = vi.type.tensor_type.elem_type
        types.update((i.name, i.data_type) for i in g.initializer)
        for node in g.node:
            for name in node.input:
                feeds.setdefault(name, set()).add(node.op_type)
    words, out, index = _words(), [], 0
    for g in _subgraphs(model.graph):
        for node in g.node:
            index += 1
            name = node.name or f"#{index}"
            tensor = (node.output[0] if node.op_type in _OUTPUT_TYPED or not node.input else node.input[0])
            word = words.get(types.get(tensor), f"type{types.get(tensor)}") if tensor in types else None
            where = f"onnx: node '{name}' ({node.op_type}, {word or 'dtype unknown'})"
            if node.domain not in ("", "ai.onnx"):
                out.append(f"{where}: domain '{node.domain}' needs a plugin")
                continue
            row = t["operators"].get(node.op_type)
            if row is None or not row["supported"]:
                out.append(f"{where}: no importer for this operator in TensorRT {version}'s parser")
                continue
            if word is None or not row["types"] or word in row["types"]:
                continue
            if node.op_type == "Constant" and word in _QUANTIZED and feeds.get(tensor) == {"DequantizeLinear"}:
                continue
            out.append(f"{where}: tensor '{tensor}' is {word}; TensorRT {version}'s parser takes "
                       f"{', '.join(row['types'])} for {node.op_type}")
    return out
