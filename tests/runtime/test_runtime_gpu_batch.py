"""The batched TensorRT pipeline against ONNX Runtime: many streams through one engine set
(pytest -m gpu; on the emulated GPU where there is none, see test_runtime_gpu.py).

Streams join at different ticks, so their windows start at different slots and the batch sizes
of the glance and decision calls sweep every engine's profile: min, opt and max. Every decision
of every stream is compared, stride 1 over 3T snippets per stream (all T window starts).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_runtime_gpu import _check_agreement, _load

from avgn_edge import emulator
from avgn_edge.runtime.backend import trt_available
from avgn_edge.runtime.compare import many_decisions

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def gpu():
    ok, why = trt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {why}")


def _streams(cfg, n: int, sizes=None) -> list:
    """n streams of 3 clips each (3T snippets), each its own sequence of clips; frames resized to
    ``sizes[i % len(sizes)]`` (H, W) where given (a camera's frame size is its own)."""
    from avgn_edge.data.datasets import open_dataset
    ds = open_dataset(f"synth:seed=1000,clips={n + 2}", cfg)
    clips = [ds[i] for i in range(n + 2)]
    out = []
    for i in range(n):
        frames = [f for c in clips[i:i + 3] for f in c.frames]
        if sizes:
            h, w = sizes[i % len(sizes)]
            frames = [f[np.arange(h) * f.shape[0] // h][:, np.arange(w) * f.shape[1] // w] for f in frames]
        audio = [a for c in clips[i:i + 3] for a in c.audio]
        out.append((frames, audio, (np.arange(len(frames)) + 1) * cfg.snippet_period))
    return out


def _sweep_offsets(bundle) -> list[int]:
    """When each stream joins, so that the calls' batch sizes hit every profile's min, opt and max:
    one stream alone first (snippets 1, decisions 1), then groups that make a tick's snippets the
    snippet opt then max, and a tick's due windows the decision opt (and max, split above it)."""
    snip, dec = bundle.stages["glance_visual"].batch, bundle.stages["decide"].batch
    assert snip.min == dec.min == 1 and dec.opt < snip.opt < snip.max and snip.max >= dec.max, (snip, dec)
    T = bundle.config.num_snippets
    a = T + 3                                     # joins at another window start than stream 0
    groups = [(1, 0), (dec.opt - 1, a), (snip.opt - dec.opt, a + 1), (snip.max - snip.opt, a + 2)]
    return [offset for count, offset in groups for _ in range(count)]


@pytest.mark.slow
@pytest.mark.parametrize("graph", [True, False], ids=["graph", "eager"])
def test_many_streams_match_ort_at_batch_min_opt_max(tiny_bundle, tmp_path_factory, graph):
    from avgn_edge.runtime.trt_pipeline import GRAPH_BATCHES, GRAPH_CACHE
    bundle = tiny_bundle
    offsets = _sweep_offsets(bundle)
    streams = _streams(bundle.config, len(offsets))
    trt_rec = _load(bundle, "trt", "fp32", tmp_path_factory.mktemp("engines"), cuda_graph=graph)
    seen: dict[str, set] = {}                     # stage -> batch sizes its engine ran at
    shapes: dict[int, list] = {}                  # context -> the batch sizes it was set to, in order
    keep = []                                     # every context seen stays alive: no id() is reused
    backend = trt_rec.backend
    set_shapes = backend._set_shapes

    def record(context, stage, n):
        seen.setdefault(stage, set()).add(n)
        shapes.setdefault(id(context), []).append(n)
        keep.append(context)
        set_shapes(context, stage, n)
    backend._set_shapes = record
    try:
        got = many_decisions(trt_rec, streams, offsets)
        want = many_decisions(_load(bundle, "ort", "fp32"), streams, offsets)
        T = bundle.config.num_snippets
        for g, w in zip(got, want):
            _check_agreement(g, w, "fp32", T)
        for stage, spec in bundle.stages.items():
            assert {spec.batch.min, spec.batch.opt, spec.batch.max} <= seen[stage], (stage, sorted(seen[stage]))
        p = trt_rec.pipeline
        assert len(p.pool) == len(streams)
        if graph:
            assert not p.graph_failed and 0 < len(p.graphs) <= GRAPH_CACHE
            assert max(len(layout) for layout in p.graphs) == bundle.stages["decide"].batch.max
            # graphs of batch n are captured on contexts of their own, set to n once and never changed
            assert 0 < len(p.graph_contexts) <= GRAPH_BATCHES and {len(k) for k in p.graphs} <= set(p.graph_contexts)
            for n, contexts in p.graph_contexts.items():
                assert all(shapes[id(c)] == [n] for c in contexts.values()), (n, [shapes[id(c)] for c in contexts.values()])
            assert any(len(v) > 1 for k, v in shapes.items())     # the eager contexts' shapes do change
        else:
            assert not p.graphs
        print(f"\n{len(streams)} streams, {sum(map(len, got))} decisions compared"
              f"{' (emulated GPU)' if emulator.active() else ''}; batch sizes seen: "
              f"{ {s: sorted(v) for s, v in seen.items()} }")
    finally:
        trt_rec.close()


@pytest.mark.slow
def test_streams_of_different_frame_sizes_in_one_batch(tmp_path):
    """Cameras of different sizes (each its own device frame ring; the crop kernel launched per window)."""
    from avgn_edge.config import get_preset
    cfg = get_preset("synth")
    streams = _streams(cfg, 3, sizes=[(128, 128), (480, 640), (97, 131)])
    offsets = [0, 1, 3]
    trt_rec = _load("synth", "trt", "fp16", tmp_path)
    try:
        got = many_decisions(trt_rec, streams, offsets)
        want = many_decisions(_load("synth", "ort", "fp16"), streams, offsets)
        for g, w in zip(got, want):
            _check_agreement(g, w, "fp16", cfg.num_snippets)
        for (frames, _, _), decisions in zip(streams, got):
            h, w = frames[0].shape[:2]
            boxes = decisions[-1][0].boxes
            assert boxes.shape == (cfg.top_k, 4) and (boxes[:, 2] <= w + 1e-3).all() and (boxes[:, 3] <= h + 1e-3).all()
    finally:
        trt_rec.close()
