"""ONNX Runtime's joined graphs (runtime/ort_fused.py): the same numbers as the staged graphs in
fewer calls (two a clip: encode, decision); frames of mixed sizes and graphs that cannot join stay staged."""

import numpy as np
import pytest

from avgn_edge.kernels.reference import glance_views
from avgn_edge.runtime.recognizer import Recognizer


@pytest.fixture(scope="module")
def pair(tiny_bundle):
    return (Recognizer.load(tiny_bundle, backend="ort", stride=1, fuse=True),
            Recognizer.load(tiny_bundle, backend="ort", stride=1))


@pytest.fixture()
def clip(tiny_cfg):
    from avgn_edge.data.synth import SynthSpec, make_clip
    return make_clip(SynthSpec.for_model(tiny_cfg, seed=1000), 3)


def counting(backend):
    calls, run = [], backend.run
    backend.run = lambda stage, feeds: calls.append(stage) or run(stage, feeds)
    return calls, run


def test_the_encode_graph_makes_glance_views_and_both_glance_stages(pair, tiny_cfg):
    fused, staged = (r.backend for r in pair)
    assert fused.frames_encoder and fused.frames_decider and fused.chains == {"focus_head"}
    assert not staged.frames_encoder and not staged.frames_decider and not staged.chains
    rng = np.random.default_rng(0)
    waves = rng.normal(0, 0.3, (3, tiny_cfg.audio_samples)).astype(np.float32)
    for h, w in ((tiny_cfg.frame_size, tiny_cfg.frame_size), (48, 80)):       # any frame size
        frames = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        got = fused.encode_frames(frames, waves)
        want = staged.run("glance_visual", {"glance": glance_views(frames, tiny_cfg.glance_size,
                                                                   tiny_cfg.mean, tiny_cfg.std)})
        want.update(staged.run("glance_audio", {"wave": waves}))
        assert set(got) == set(want) == {"gmap", "gvec", "avec"}
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4)


def test_a_clip_is_two_calls_with_the_staged_answer(pair, clip):
    fused, staged = pair
    calls, run = counting(fused.backend)
    try:
        a = fused.classify_snippets(clip.frames, clip.audio)
    finally:
        fused.backend.run = run
    b = staged.classify_snippets(clip.frames, clip.audio)
    assert calls == ["encode", "decision"]
    assert a.indices.tolist() == b.indices.tolist()
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose(a.saliency, b.saliency, atol=1e-5)


def test_frames_of_mixed_sizes_in_one_batch_go_through_the_stages(pair, clip, tiny_cfg):
    fused, staged = pair
    windows = [fused.new_window(stride=1) for _ in range(2)]
    small = np.ascontiguousarray(clip.frames[0][::2, ::2])
    calls, run = counting(fused.backend)
    try:
        fused.encode_many([windows[0].check(clip.frames[0], clip.audio[0], 1.0),
                           windows[1].check(small, clip.audio[0], 1.0)])
    finally:
        fused.backend.run = run
    assert calls == ["glance_visual", "glance_audio"]
    one = staged.new_window(stride=1)
    staged.encode_many([one.check(small, clip.audio[0], 1.0)])
    np.testing.assert_allclose(windows[1].ring.features["gvec"][0], one.ring.features["gvec"][0], atol=1e-4)


def test_every_precision_joins_and_a_graph_that_cannot_stays_staged(monkeypatch, caplog):
    import logging

    from avgn_edge.bundle import load_bundle
    from avgn_edge.runtime import ort_fused
    from avgn_edge.runtime.ort import OrtBackend
    b = load_bundle("synth")
    for p in ("fp16", "int8"):                   # FP16 graphs take float32 and cast inside; INT8 is ONNX Runtime's form
        be = OrtBackend(b, p, fuse=True)
        assert be.frames_encoder and be.frames_decider and be.chains == {"focus_head"}

    def refuse(*a, **k):
        raise ValueError("not this one")
    monkeypatch.setattr(ort_fused, "encode_graph", refuse)
    with caplog.at_level(logging.INFO, logger="avgn_edge"):
        be = OrtBackend(b, "fp32", fuse=True)
    assert not be.frames_encoder and be.frames_decider and be.chains == {"focus_head"}
    assert any("encode stays staged (ValueError: not this one)" in r.message for r in caplog.records)


def test_the_crop_in_the_graph_is_the_kernels_reference(tiny_cfg):
    """``crop_graph`` against ``crop_patches_batch`` (the CUDA kernel's NumPy reference): patches
    at the borders (clipped centres), in the middle, frames of another size than the model's."""
    import onnxruntime as ort

    from avgn_edge.bundle import load_bundle
    from avgn_edge.kernels.reference import crop_patches_batch
    from avgn_edge.runtime.ort_fused import crop_graph
    import onnx
    like = onnx.load(str(load_bundle("synth").stage_path("decide")))
    rng = np.random.default_rng(3)
    for h, w, p, frac in ((128, 128, 32, 0.25), (72, 120, 24, 0.4)):
        sess = ort.InferenceSession(crop_graph(p, frac, tiny_cfg.mean, tiny_cfg.std, like).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        frames = rng.integers(0, 256, (2, 5, h, w, 3), dtype=np.uint8)
        indices = np.array([[0, 4], [3, 1]], np.int32)
        centres = np.array([[[0.0, 0.0], [1.0, 0.5]], [[0.5, 0.5], [0.31, 0.87]]], np.float32)
        got = sess.run(None, {"frames": frames, "indices": indices, "centres": centres})[0]
        want = crop_patches_batch([list(f) for f in frames], [0, 0], indices, centres, frac, p,
                                  tiny_cfg.mean, tiny_cfg.std)
        np.testing.assert_allclose(got, want, atol=2e-4)


def test_a_joined_graph_gets_all_cores_only_when_its_work_is_heavy():
    from avgn_edge.bundle import load_bundle
    from avgn_edge.runtime.ort import JOINED_THREADS_FROM_GMACS, OrtBackend
    b = load_bundle("synth")
    threads = lambda be, s: be.sessions[s].get_session_options().intra_op_num_threads
    be = OrtBackend(b, fuse=True)
    assert threads(be, "decision") == 1 and threads(be, "encode") == 1 and threads(be, "focus_local") == 0
    b.provenance["gflops_per_clip"] = dict(b.provenance["gflops_per_clip"], focus_local=JOINED_THREADS_FROM_GMACS)
    assert threads(OrtBackend(b, fuse=True), "decision") == 0
    assert threads(OrtBackend(b, threads=3, fuse=True), "decision") == 3


def test_frames_at_the_glance_size_skip_the_resize(pair, clip, tiny_cfg):
    """paper's frames are its glance size: NumPy skips the identity resize, the graph would not."""
    fused, staged = pair
    g = tiny_cfg.glance_size
    small = np.ascontiguousarray(clip.frames[0][:g, :g])
    w = fused.new_window(stride=1)
    calls, run = counting(fused.backend)
    try:
        fused.encode_many([w.check(small, clip.audio[0], 1.0)])
    finally:
        fused.backend.run = run
    assert calls == ["glance_visual", "glance_audio"]
