"""ONNX Runtime's form of the log-mel front end: the STFT convolution folded in half.

The exported front end (model/audio.py ``LogMel``) is ``Conv1d(wave, dft[2B,1,N], stride=hop)``,
then ``cos**2 + sin**2`` and a mel MatMul. A periodic Hann window is symmetric (w[n] = w[N-n]), so
every frame's DFT folds:

    re[k] = sum_{0<n<=N/2} w[n] cos(2 pi k n/N) (x[n] + x[N-n])      (halved at n = N/2)
    im[k] = -sum_{0<n<N/2} w[n] sin(2 pi k n/N) (x[n] - x[N-n])       (w[0] = 0)

so the frames (x[n], and x[N-n] from the wave reversed once) are cut with Slice and Reshape in
hop-sized blocks (hop need not divide N), added and subtracted, and multiplied by two matrices of
half the convolution's columns; frequency bins that no mel filter reads (0 Hz and Nyquist for
``synth``) are dropped. Same numbers up to float32 summation order (tests/export/test_ort_rewrites.py). Built from the graph's own constants
(the weights are checked for the symmetry, never assumed), at export or quantize time where onnx is
installed; ONNX Runtime runs the result (``Bundle.stage_path(..., ort=True)``), TensorRT keeps the
exported graph.
"""

from __future__ import annotations

import numpy as np

from ..deps import require


class FoldError(ValueError):
    """The graph's front end is not the symmetric-window STFT this rewrite knows."""


FRONT_END_OPS = ["Unsqueeze", "Conv", "Slice", "Slice", "Pow", "Pow", "Add", "MatMul"]


def fold_log_mel(model):
    """A copy of a glance_audio graph whose STFT convolution and mel MatMul are replaced by the
    folded form (FoldError where the front end is not the expected one)."""
    return replace_front_end(model, folded_nodes)


def replace_front_end(model, build):
    """A copy of ``model`` with its STFT convolution, power and mel MatMul replaced by the nodes of
    ``build(wave, out, hop, samples, dft [2B,1,N], mel [M,B]) -> (nodes, initializers)``, which must
    compute the mel MatMul's output ``out`` [batch, M, frames] from ``wave`` [batch, samples]. Only the
    operators are matched here; that the result computes the same numbers is measured by the caller
    (ort_rewrites.py, on real inputs) before a bundle uses it."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    wave = g.input[0].name
    consts = _constants(g)
    by_output = {o: n for n in g.node for o in n.output}
    conv = next((n for n in g.node if n.op_type == "Conv" and by_output.get(n.input[0]) is not None
                 and by_output[n.input[0]].op_type == "Unsqueeze" and by_output[n.input[0]].input[0] == wave), None)
    if conv is None or conv.input[1] not in consts:
        raise FoldError("no STFT convolution of the wave input with constant weights")
    mel_mm = _downstream_matmul(g, conv.output[0])
    front = _nodes_between(g, wave, mel_mm)
    if sorted(n.op_type for n in front) != sorted(FRONT_END_OPS) or mel_mm.input[0] not in consts:
        raise FoldError(f"unexpected front end: {[n.op_type for n in front]}")
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    if any(attrs.get("pads", [0, 0])) or attrs.get("dilations", [1]) != [1] or attrs.get("group", 1) != 1:
        raise FoldError(f"STFT convolution with padding, dilation or groups: {attrs}")
    samples = g.input[0].type.tensor_type.shape.dim[1].dim_value
    if samples <= 0:
        raise FoldError("the wave input has no fixed length")
    nodes, inits = build(wave, mel_mm.output[0], attrs["strides"][0], samples, consts[conv.input[1]],
                         consts[mel_mm.input[0]])
    keep = [n for n in g.node if all(n is not f for f in front)]
    at = list(g.node).index(front[0]) if front else 0
    del g.node[:]
    g.node.extend(keep[:at] + nodes + keep[at:])
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items())
    _drop_unused_constants(g)
    onnx.checker.check_model(model)
    return model


def _fold_weights(dft: np.ndarray, mel: np.ndarray):
    """[2B,1,N] windowed DFT and [M,B] mel -> (cos [K,B'], sin [K,B'], mel [B',M], N): K = N/2 taps
    (n = 1..N/2), B' = the bins some mel filter reads."""
    two_b, _, n_fft = dft.shape
    bins = two_b // 2
    if n_fft % 2 or bins != n_fft // 2 + 1 or mel.shape[1] != bins:
        raise FoldError(f"weights {dft.shape} and mel {mel.shape} are not an N-point one-sided STFT")
    cos, sin = dft[:bins, 0].astype(np.float64), dft[bins:, 0].astype(np.float64)
    mirror = (-np.arange(n_fft)) % n_fft                    # n -> N - n (0 -> 0)
    scale = np.abs(dft).max()
    if not (np.allclose(cos, cos[:, mirror], atol=1e-5 * scale) and np.allclose(sin, -sin[:, mirror], atol=1e-5 * scale)):
        raise FoldError("the STFT window is not symmetric (w[n] != w[N-n])")
    if np.abs(dft[:, 0, 0]).max() > 1e-6 * scale:
        raise FoldError("the STFT window does not start at zero (w[0] != 0, not a periodic Hann)")
    taps = slice(1, n_fft // 2 + 1)                         # n = 1 .. N/2 (w[0] = 0)
    half = np.ones(n_fft // 2)
    half[-1] = 0.5                                          # x[N/2] is its own mirror: a = b there
    used = np.flatnonzero(np.abs(mel).max(axis=0) > 0)
    c = (cos[used, taps] * half).T
    s = sin[used, taps].T
    return c.astype(np.float32), s.astype(np.float32), np.ascontiguousarray(mel[:, used].T), n_fft


def folded_nodes(wave: str, out: str, hop: int, samples: int, dft: np.ndarray, mel: np.ndarray):
    """The folded front end (``replace_front_end``'s ``build``). Frames are
    cut with Slice and Reshape in blocks of ``hop`` samples (ONNX Runtime's Gather copies one element
    at a time: with it the stage gained 15% at batch 8, with blocks 35-50%); x[N-n] comes from the wave reversed once,
    whose frames are the original ones in reverse order."""
    cos, sin, mel_t, n_fft = _fold_weights(dft, mel)
    graph = Builder("/audio/frontend_folded/")
    frames, taps = (samples - n_fft) // hop + 1, cos.shape[0]
    one, back = graph.const([1]), graph.const([-1])

    def cut(src: str, offset: int) -> str:             # [batch, frames, taps]: x[offset + j hop + n]
        starts = range(offset, offset + taps, hop)
        if starts[-1] + frames * hop > samples:
            raise FoldError(f"frames of {taps} taps every {hop} samples do not fit in blocks of {samples}")
        pieces = [graph.op("Reshape", graph.op("Slice", src, graph.const([begin]),
                                                graph.const([begin + frames * hop]), one),
                           graph.const([0, frames, hop])) for begin in starts]
        width = taps - hop * (len(pieces) - 1)          # the last block's share of a frame
        if width < hop:
            pieces[-1] = graph.op("Slice", pieces[-1], graph.const([0]), graph.const([width]), graph.const([2]))
        return graph.op("Concat", *pieces, axis=2) if len(pieces) > 1 else pieces[0]

    reversed_wave = graph.op("Slice", wave, back, graph.const([np.iinfo(np.int64).min]), one, back)
    a = cut(wave, 1)                                    # x[j hop + n], n = 1 .. N/2
    b_frames_reversed = cut(reversed_wave, samples - n_fft - (frames - 1) * hop)     # x[j hop + N - n]
    b = graph.op("Slice", b_frames_reversed, graph.const([frames - 1]), graph.const([-frames - 1]), one, back)
    re = graph.op("MatMul", graph.op("Add", a, b), graph.const(cos))         # [batch, frames, B']
    im = graph.op("MatMul", graph.op("Sub", a, b), graph.const(sin))
    power = graph.op("Add", graph.op("Mul", re, re), graph.op("Mul", im, im))
    mel = graph.op("MatMul", power, graph.const(mel_t))                      # [batch, frames, M]
    graph.op("Transpose", mel, perm=[0, 2, 1], out=out)
    return graph.nodes, graph.inits


class Builder:
    """Appends ONNX nodes and initializers under one name prefix."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.inits = prefix, [], {}

    def const(self, value) -> str:
        value = np.asarray(value)
        name = f"{self.prefix}c{len(self.inits)}"
        self.inits[name] = value.astype(np.int64) if value.dtype.kind in "iu" else value
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        from onnx import helper
        out = out or f"{self.prefix}{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _constants(g) -> dict[str, np.ndarray]:
    from onnx import numpy_helper
    out = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _downstream_matmul(g, tensor: str):
    """The first MatMul reached from ``tensor`` (the mel projection)."""
    seen, todo = set(), [tensor]
    while todo:
        name = todo.pop(0)
        for n in g.node:
            if name in n.input and id(n) not in seen:
                if n.op_type == "MatMul":
                    return n
                seen.add(id(n))
                todo.extend(n.output)
    raise FoldError("no mel MatMul after the STFT convolution")


def _nodes_between(g, source: str, last):
    """The non-Constant nodes on some path from ``source`` to ``last`` (inclusive), in graph order."""
    producers = {o: n for n in g.node for o in n.output}
    back, todo = set(), [last]
    while todo:
        n = todo.pop()
        if id(n) in back:
            continue
        back.add(id(n))
        todo.extend(producers[i] for i in n.input if i in producers and producers[i].op_type != "Constant")
    fwd, reach = set(), {source}
    for n in g.node:
        if any(i in reach for i in n.input):
            fwd.add(id(n))
            reach.update(n.output)
    return [n for n in g.node if id(n) in back and id(n) in fwd]


def _drop_unused_constants(g):
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    dead = [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]
    for n in dead:
        g.node.remove(n)
