"""Fewer, fatter ONNX Runtime calls: the bundle's stage graphs joined in memory when a backend opens.

* ``encode``: frames -> glance view -> glance_visual, beside glance_audio, in one graph. It takes
  the snippets' frames as they come (uint8 [N, H, W, 3]) and the two resampling matrices of
  ``kernels.reference.glance_views`` (``wy`` [g, H], ``wxt`` [W, g]; any frame size), so the
  resize and normalisation run in ONNX Runtime instead of NumPy, and both glance stages in one call.
* ``focus_head``: focus_local then head, one call per decision batch.

The joined graphs hold the stage graphs unchanged (same nodes, same weights, any precision
variant), so their numbers are the staged ones; the glance view's arithmetic is
``glance_views``' (two matrix products and a multiply-add), which tests check against it.
TensorRT keeps its staged engines and crop kernel (trt_pipeline.py): this is ONNX Runtime only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..kernels.reference import axis_weights

PREFIX_INPUTS = ("frames", "wy", "wxt")


def _keep_names(model, prefix: str):
    """``onnx.compose.add_prefix`` without renaming the graph's inputs and outputs (the chain's
    tensors keep the names the pipeline feeds and reads)."""
    from onnx import compose
    out = compose.add_prefix(model, prefix, rename_inputs=False, rename_outputs=False)
    back = {prefix + o.name: o.name for o in model.graph.output}
    for node in out.graph.node:
        node.output[:] = [back.get(x, x) for x in node.output]
    for o in out.graph.output:
        o.name = back.get(o.name, o.name)
    return out


def glance_prefix(glance_input: str, glance_size: int, mean, std, like):
    """uint8 frames [N, H, W, 3], wy [g, H], wxt [W, g] -> the glance stage's input [N, 3, g, g]."""
    from onnx import TensorProto, helper, numpy_helper
    gain = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 3, 1, 1).astype(np.float32)
    bias = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(1, 3, 1, 1).astype(np.float32)
    g = glance_size
    nodes = [helper.make_node("Cast", ["frames"], ["pre/f"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["pre/f"], ["pre/t"], perm=[0, 3, 1, 2]),
             helper.make_node("MatMul", ["wy", "pre/t"], ["pre/rows"]),            # rows first, as glance_views
             helper.make_node("MatMul", ["pre/rows", "wxt"], ["pre/cols"]),
             helper.make_node("Mul", ["pre/cols", "pre/gain"], ["pre/scaled"]),
             helper.make_node("Add", ["pre/scaled", "pre/bias"], [glance_input])]
    graph = helper.make_graph(
        nodes, "glance_view",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["n", "h", "w", 3]),
         helper.make_tensor_value_info("wy", TensorProto.FLOAT, [g, "h"]),
         helper.make_tensor_value_info("wxt", TensorProto.FLOAT, ["w", g])],
        [helper.make_tensor_value_info(glance_input, TensorProto.FLOAT, ["n", 3, g, g])],
        [numpy_helper.from_array(gain, "pre/gain"), numpy_helper.from_array(bias, "pre/bias")])
    return helper.make_model(graph, opset_imports=[o for o in like.opset_import if o.domain in ("", "ai.onnx")],
                             ir_version=like.ir_version)


def encode_graph(visual, audio, glance_size: int, mean, std):
    """The ``encode`` graph from the glance_visual and glance_audio stage models."""
    from onnx import TensorProto, compose
    name = visual.graph.input[0].name
    if visual.graph.input[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError(f"the glance graph takes {visual.graph.input[0].type.tensor_type.elem_type}, not float32")
    viewed = compose.merge_models(glance_prefix(name, glance_size, mean, std, visual), visual,
                                  io_map=[(name, name)])
    return compose.merge_models(viewed, _keep_names(audio, "audio/"), io_map=[])


def focus_head_graph(focus, head):
    """The ``focus_head`` graph from the focus_local and head stage models."""
    from onnx import compose
    shared = [(o.name, o.name) for o in focus.graph.output if o.name in {i.name for i in head.graph.input}]
    return compose.merge_models(focus, _keep_names(head, "head/"), io_map=shared)


@lru_cache(maxsize=64)
def glance_matrices(height: int, width: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``wy`` [size, H] and ``wxt`` [W, size]: ``glance_views``' weights for one frame size."""
    wy = axis_weights(height, size, 0.0, float(height)).astype(np.float32)
    wx = axis_weights(width, size, 0.0, float(width)).astype(np.float32)
    wy, wxt = np.ascontiguousarray(wy), np.ascontiguousarray(wx.T)
    wy.setflags(write=False)
    wxt.setflags(write=False)
    return wy, wxt


def crop_graph(patch_size: int, box_frac: float, mean, std, like):
    """frames uint8 [B, T, H, W, 3] (each window in time order), indices [B, k], centres [B, k, 2]
    -> patches [B, k, 3, p, p]: ``crop_patches_batch``'s arithmetic (a triangle filter of the
    box's scale, weights normalised per output pixel, rows then columns) in ONNX operators, with
    the weights computed in float32 from the centres inside the graph."""
    from onnx import TensorProto, helper, numpy_helper
    p, half = patch_size, 0.5 * box_frac
    c = lambda name, v, dt=np.float32: numpy_helper.from_array(np.asarray(v, dt), "crop/" + name)
    inits = [c("half", half), c("hi", 1.0 - half), c("frac", box_frac), c("p", float(p)), c("one", 1.0),
             c("halfpx", 0.5), c("grid", np.arange(p) + 0.5), c("k255", 255.0),
             c("mean", np.asarray(mean, np.float32).reshape(1, 1, 3, 1, 1)),
             c("std", np.asarray(std, np.float32).reshape(1, 1, 3, 1, 1)),
             c("last", [-1], np.int64), c("i2", [2], np.int64), c("i3", [3], np.int64),
             c("xy0", [0], np.int64), c("xy1", [1], np.int64)]
    n = helper.make_node
    nodes = [n("Cast", ["indices"], ["crop/idx64"], to=TensorProto.INT64),
             n("Unsqueeze", ["crop/idx64", "crop/last"], ["crop/idx3"]),
             n("GatherND", ["frames", "crop/idx3"], ["crop/chosen"], batch_dims=1),        # [B, k, H, W, 3]
             n("Cast", ["crop/chosen"], ["crop/f"], to=TensorProto.FLOAT),
             n("Transpose", ["crop/f"], ["crop/chw"], perm=[0, 1, 4, 2, 3]),               # [B, k, 3, H, W]
             n("Shape", ["frames"], ["crop/shape"])]
    for axis, dim, xy in (("y", "crop/i2", "crop/xy1"), ("x", "crop/i3", "crop/xy0")):
        a = f"crop/{axis}_"
        nodes += [n("Gather", ["crop/shape", dim], [a + "n64"]),
                  n("Cast", [a + "n64"], [a + "n"], to=TensorProto.FLOAT),                   # [1]: H or W
                  n("Gather", ["centres", xy], [a + "c3"], axis=2),
                  n("Squeeze", [a + "c3", "crop/last"], [a + "c"]),                          # [B, k]
                  n("Clip", [a + "c", "crop/half", "crop/hi"], [a + "cc"]),                   # as patch_box
                  n("Sub", [a + "cc", "crop/half"], [a + "s0"]),
                  n("Mul", [a + "s0", a + "n"], [a + "start"]),                               # [B, k] pixels
                  n("Mul", ["crop/frac", a + "n"], [a + "len"]),
                  n("Div", [a + "len", "crop/p"], [a + "scale"]),
                  n("Max", [a + "scale", "crop/one"], [a + "support"]),
                  n("Mul", ["crop/grid", a + "scale"], [a + "off"]),                          # [p]
                  n("Unsqueeze", [a + "start", "crop/last"], [a + "start3"]),
                  n("Add", [a + "start3", a + "off"], [a + "ctr"]),                           # [B, k, p]
                  n("Unsqueeze", [a + "ctr", "crop/last"], [a + "ctr4"]),                     # [B, k, p, 1]
                  n("Add", [a + "n", "crop/halfpx"], [a + "end"]),
                  n("Squeeze", [a + "end"], [a + "end0"]),
                  n("Range", ["crop/halfpx", a + "end0", "crop/one"], [a + "taps"]),          # [N]: 0.5, 1.5, ...
                  n("Sub", [a + "taps", a + "ctr4"], [a + "d"]),
                  n("Abs", [a + "d"], [a + "ad"]),
                  n("Div", [a + "ad", a + "support"], [a + "r"]),
                  n("Sub", ["crop/one", a + "r"], [a + "t"]),
                  n("Relu", [a + "t"], [a + "w0"]),                                           # [B, k, p, N]
                  n("ReduceSum", [a + "w0", "crop/last"], [a + "tot"], keepdims=1),
                  n("Div", [a + "w0", a + "tot"], [a + "w"]),
                  n("Unsqueeze", [a + "w", "crop/i2"], [a + "w5"])]                            # [B, k, 1, p, N]
    nodes += [n("Transpose", ["crop/x_w5"], ["crop/x_wt"], perm=[0, 1, 2, 4, 3]),             # [B, k, 1, W, p]
              n("MatMul", ["crop/y_w5", "crop/chw"], ["crop/rows"]),                         # [B, k, 3, p, W]
              n("MatMul", ["crop/rows", "crop/x_wt"], ["crop/v"]),                           # [B, k, 3, p, p]
              n("Div", ["crop/v", "crop/k255"], ["crop/v01"]),
              n("Sub", ["crop/v01", "crop/mean"], ["crop/vc"]),
              n("Div", ["crop/vc", "crop/std"], ["patches"])]
    graph = helper.make_graph(
        nodes, "crop",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["b", "t", "h", "w", 3]),
         helper.make_tensor_value_info("indices", TensorProto.INT32, ["b", "k"]),
         helper.make_tensor_value_info("centres", TensorProto.FLOAT, ["b", "k", 2])],
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["b", "k", 3, p, p])], inits)
    return helper.make_model(graph, opset_imports=[o for o in like.opset_import if o.domain in ("", "ai.onnx")],
                             ir_version=like.ir_version)


def decision_graph(decide, focus, head, patch_size: int, box_frac: float, mean, std):
    """decide, the crop (``crop_graph``), focus_local and head as one graph: inputs decide's
    (gmaps, gvecs, avecs) and the windows' frames in time order; outputs decide's and ``scores``."""
    from onnx import helper
    parts = [_keep_names(decide, "decide/"), _keep_names(crop_graph(patch_size, box_frac, mean, std, decide), "cropg/"),
             _keep_names(focus_head_graph(focus, head), "fh/")]
    made, inputs, nodes, inits = set(), {}, [], []
    for m in parts:
        for i in m.graph.input:
            if i.name not in made and i.name not in inputs:
                inputs[i.name] = i
        made |= {o for node in m.graph.node for o in node.output}
        nodes += m.graph.node
        inits += m.graph.initializer
    outputs = list(decide.graph.output) + [o for o in head.graph.output]
    opsets = {}
    for m in parts:
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    graph = helper.make_graph(nodes, "decision", list(inputs.values()), outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                             ir_version=max(m.ir_version for m in parts))
