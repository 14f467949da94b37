"""The runtime: Recognizer push/clip modes, the ring, bad inputs, agreement with PyTorch."""

import logging

import numpy as np
import pytest

from avgn_edge.errors import InputError
from avgn_edge.runtime.ring import SnippetRing


@pytest.fixture(scope="module")
def rec(tiny_bundle):
    from avgn_edge.runtime.recognizer import Recognizer
    return Recognizer.load(tiny_bundle, backend="ort", stride=2)


@pytest.fixture()
def clip(tiny_cfg):
    from avgn_edge.data.synth import SynthSpec, make_clip
    return make_clip(SynthSpec.for_model(tiny_cfg, seed=1000), 5)


def test_ring_order_and_window():
    r = SnippetRing(3)
    for t in range(5):
        r.push(np.zeros((2, 2, 3), np.uint8), float(t), {"x": np.array([t])})
    assert r.full and len(r) == 3 and r.start == 2
    assert r.window("x").ravel().tolist() == [2, 3, 4]
    assert r.times[r.order()].tolist() == [2.0, 3.0, 4.0]


def test_push_decides_every_stride_once_the_window_is_full(rec, clip, tiny_cfg):
    rec.reset()
    T = tiny_cfg.num_snippets
    results = []
    for i in range(T + 4):
        j = i % T
        results.append(rec.push(clip.frames[j], clip.audio[j], 0.25 * (i + 1)))
    decided = [i for i, r in enumerate(results) if r is not None]
    assert decided == [T - 1, T + 1, T + 3]
    r = results[T - 1]
    assert r.scores.shape == (tiny_cfg.num_classes,) and abs(r.scores.sum() - 1) < 1e-4
    assert r.saliency.shape == (T,) and r.indices.shape == (tiny_cfg.top_k,)
    assert r.timestamps.tolist() == [0.25 * (i + 1) for i in range(T)]
    x0, y0, x1, y1 = r.boxes[0]
    assert 0 <= x0 < x1 <= tiny_cfg.frame_size and x1 - x0 == pytest.approx(tiny_cfg.patch_size)
    assert set(r.timings) >= {"decide", "crop", "focus_local", "head"}
    d = r.to_dict()
    assert d["top"][0]["label"] == r.label and len(d["saliency"]) == T


def test_push_equals_clip_classification(rec, clip):
    rec.reset()
    for i, (f, a) in enumerate(zip(clip.frames, clip.audio)):
        last = rec.push(f, a, i + 1.0)
    whole = rec.classify_snippets(clip.frames, clip.audio)
    np.testing.assert_allclose(last.scores, whole.scores, atol=1e-6)
    assert last.indices.tolist() == whole.indices.tolist()


def test_bad_frames(rec, clip, caplog):
    rec.reset()
    f, a = clip.frames[0], clip.audio[0]
    with caplog.at_level(logging.WARNING, logger="avgn_edge.input"):
        rec.push(f.mean(axis=2).astype(np.uint8), a, 1.0)                    # grey -> RGB
        rec.push(np.concatenate([f, f[..., :1]], axis=2), a, 2.0)            # RGBA -> RGB
        rec.push(f.astype(np.float32) / 255.0, a, 3.0)                       # float [0,1] -> uint8
    assert "grey" in caplog.text and "alpha" in caplog.text and "scaled" in caplog.text
    assert rec.ring.count == 3
    for bad, why in [(None, "None"), (f[..., :2], "HxWx3"), (f.astype(np.int16), "uint8"),
                     (f.astype(np.float32), "outside"), (np.zeros((0, 5, 3), np.uint8), "HxWx3")]:
        with pytest.raises(InputError, match=why):
            rec.push(bad, a, 10.0)
    assert rec.ring.count == 3                                                # never half-written


def test_a_new_frame_size_restarts_the_window(rec, clip):
    rec.reset()
    rec.push(clip.frames[0], clip.audio[0], 1.0)
    bigger = np.repeat(np.repeat(clip.frames[1], 2, 0), 2, 1)
    rec.push(bigger, clip.audio[1], 2.0)
    assert len(rec.ring) == 1 and rec.ring.frames[0].shape == bigger.shape


def test_bad_timestamps_leave_the_ring_unchanged(rec, clip):
    rec.reset()
    rec.push(clip.frames[0], clip.audio[0], 5.0)
    for t in (5.0, 4.0, float("nan"), "soon"):
        with pytest.raises(InputError):
            rec.push(clip.frames[1], clip.audio[1], t)
    assert rec.ring.count == 1 and rec.ring.last_time == 5.0


def test_audio_conversions(rec, clip, tiny_cfg):
    from avgn_edge.runtime.inputs import Warner, check_audio
    n, sr = tiny_cfg.audio_samples, tiny_cfg.sample_rate
    w = Warner()
    tone = np.sin(2 * np.pi * 1000 * np.arange(3 * n) / (3 * sr)).astype(np.float32)
    out, ok = check_audio(tone, n, sr, 3 * sr, w)                 # 48 kHz -> 16 kHz
    assert ok and out.shape == (n,)
    peak = np.argmax(np.abs(np.fft.rfft(out))) * sr / n
    assert abs(peak - 1000) <= sr / n
    out, ok = check_audio(np.stack([tone[:n], tone[:n]], 1), n, sr, None, w)    # stereo -> mono
    assert ok and np.allclose(out, tone[:n])
    out, ok = check_audio(tone[:10], n, sr, None, w)              # short -> left-padded
    assert ok and np.all(out[:-10] == 0) and np.allclose(out[-10:], tone[:10])
    out, ok = check_audio(tone[: 2 * n], n, sr, None, w)          # long -> the window ending now
    assert np.allclose(out, tone[n:2 * n])
    bad = tone[:n].copy()
    bad[5] = np.nan
    out, ok = check_audio(bad, n, sr, None, w)
    assert not ok and not out.any()
    with pytest.raises(InputError):
        check_audio(np.zeros((2, 2, 2)), n, sr, None, w)
    with pytest.raises(InputError):
        check_audio(np.array(["a"]), n, sr, None, w)
    # through push: NaN audio is flagged on the result
    rec.reset()
    for i in range(tiny_cfg.num_snippets):
        r = rec.push(clip.frames[i], bad if i == 0 else clip.audio[i], i + 1.0)
    assert r is not None and r.audio_ok is False


def test_ort_pipeline_agrees_with_pytorch(tiny_run, tiny_export, tiny_cfg):
    torch = pytest.importorskip("torch")
    from avgn_edge.runtime.recognizer import Recognizer
    rec = Recognizer.load(tiny_export, backend="ort")        # the bundle exported from this very checkpoint
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.train.checkpoint import load_checkpoint
    model, _ = load_checkpoint(tiny_run)
    ds = open_dataset("synth:seed=1000,clips=30", tiny_cfg)
    agree = []
    for i in range(len(ds)):
        s = ds[i]
        with torch.no_grad():
            logits, _ = model(torch.from_numpy(s.frames)[None], torch.from_numpy(s.audio)[None])
        agree.append(int(logits.argmax()) == int(np.argmax(rec.classify_snippets(s.frames, s.audio).scores)))
    assert np.mean(agree) >= 0.99


def test_classify_clip_from_mp4(rec, tmp_path, tiny_cfg):
    from avgn_edge.data.synth import SynthSpec, clip_video, make_clip
    from avgn_edge.errors import SourceError
    from avgn_edge.media import write_video
    spec = SynthSpec.for_model(tiny_cfg, seed=1000)
    frames, audio = clip_video(spec, 2)
    write_video(tmp_path / "c.mp4", frames, spec.fps, audio, spec.sample_rate)
    write_video(tmp_path / "silent.mp4", frames, spec.fps, None)
    mem = rec.classify_snippets(make_clip(spec, 2).frames, make_clip(spec, 2).audio)
    disk = rec.classify_clip(tmp_path / "c.mp4")
    assert disk.timestamps.tolist() == pytest.approx(mem.timestamps.tolist())
    assert np.abs(disk.scores - mem.scores).max() < 0.25
    silent = rec.classify_clip(tmp_path / "silent.mp4")
    assert silent.audio_ok is False
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(SourceError):
        rec.classify_clip(tmp_path / "bad.mp4")
    with pytest.raises(SourceError):
        rec.classify_clip(tmp_path / "missing.mp4")


def test_many_windows_in_one_batch_give_each_its_own_answer(rec, tiny_cfg):
    """Three streams through one model: one glance call per tick, one decision call for the due
    windows; every result equals that stream's own push-mode result."""
    from avgn_edge.data.synth import SynthSpec, make_clip
    from avgn_edge.runtime.recognizer import Recognizer
    clips = [make_clip(SynthSpec.for_model(tiny_cfg, seed=1000), i) for i in range(3)]
    windows = [rec.new_window(stride=1) for _ in clips]
    calls = []
    run = rec.backend.run
    rec.backend.run = lambda stage, feeds: calls.append((stage, len(next(iter(feeds.values()))))) or run(stage, feeds)
    try:
        for i in range(tiny_cfg.num_snippets):
            rec.encode_many([w.check(c.frames[i], c.audio[i], i + 1.0) for w, c in zip(windows, clips)])
        batched = rec.decide_many(windows)
    finally:
        rec.backend.run = run
    assert ("glance_visual", 3) in calls and ("decide", 3) in calls and ("focus_local", 3) in calls
    assert sum(s == "glance_visual" for s, _ in calls) == tiny_cfg.num_snippets     # one call per tick
    for c, r in zip(clips, batched):
        one = Recognizer(rec.bundle, rec.backend, rec.pipeline, stride=1)
        for i in range(tiny_cfg.num_snippets):
            last = one.push(c.frames[i], c.audio[i], i + 1.0)
        np.testing.assert_allclose(r.scores, last.scores, atol=1e-5)
        assert r.indices.tolist() == last.indices.tolist()


def test_classify_clip_makes_one_glance_call_and_splits_at_the_batch_limit(rec, clip, tiny_cfg):
    calls = []
    run = rec.backend.run
    rec.backend.run = lambda stage, feeds: calls.append((stage, len(next(iter(feeds.values()))))) or run(stage, feeds)
    limit = dict(rec.pipeline.limit)
    try:
        whole = rec.classify_snippets(clip.frames, clip.audio)
        T = tiny_cfg.num_snippets
        assert calls[:2] == [("glance_visual", T), ("glance_audio", T)]
        calls.clear()
        rec.pipeline.limit = {s: 3 for s in limit}                   # e.g. an engine built for batch <= 3
        split = rec.classify_snippets(clip.frames, clip.audio)
        assert [n for s, n in calls if s == "glance_visual"] == [3] * (T // 3) + ([T % 3] if T % 3 else [])
    finally:
        rec.backend.run, rec.pipeline.limit = run, limit
    np.testing.assert_allclose(whole.scores, split.scores, atol=1e-5)


def test_auto_on_a_machine_with_tensorrt_but_no_driver_uses_onnx_runtime(tmp_path, monkeypatch, caplog):
    """cuda-bindings raises RuntimeError (not ImportError) when libcuda is missing: that is 'no GPU'."""
    driver = pytest.importorskip("cuda.bindings.driver", reason="cuda-bindings not installed")
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text("__version__ = '10.3.0'\n")   # TensorRT 'installed'
    monkeypatch.syspath_prepend(str(tmp_path))

    def no_driver(flags):
        raise RuntimeError("Failed to dlopen libcuda.so.1")
    monkeypatch.setattr(driver, "cuInit", no_driver)
    from avgn_edge.runtime.backend import open_backend, trt_available
    ok, why = trt_available()
    assert ok is False and "RuntimeError" in why and "libcuda" in why
    from avgn_edge.bundle import load_bundle
    with caplog.at_level(logging.INFO, logger="avgn_edge"):
        assert open_backend(load_bundle("synth"), "auto").name == "ort"
    assert any("no usable CUDA driver" in r.message for r in caplog.records)


def test_session_settings_follow_the_stage_work(tiny_bundle):
    """All cores for a stage whose item costs enough (manifest GMACs), one thread below; the knobs the
    bench sweeps reach the ONNX Runtime session."""
    import onnxruntime as ort

    from avgn_edge.bundle import load_bundle
    from avgn_edge.runtime.ort import THREADS_FROM_GMACS, open_session, session_settings, stage_work
    assert session_settings("glance_visual", "fp32", work=THREADS_FROM_GMACS)["threads"] == 0
    assert session_settings("glance_visual", "fp32", work=THREADS_FROM_GMACS / 2)["threads"] == 1
    assert session_settings("focus_local", "fp32")["threads"] == 0 and session_settings("head", "fp32")["threads"] == 1
    assert session_settings("head", "fp32", threads=3)["threads"] == 3
    b = load_bundle(tiny_bundle.root)
    gf = b.provenance["gflops_per_clip"]
    assert stage_work(b, "glance_visual") == pytest.approx(gf["glance_visual"] / b.config.num_snippets)
    assert stage_work(b, "focus_local") == pytest.approx(gf["focus_local"])
    st = dict(session_settings("head", "fp32"), execution="parallel", arena=False, threads=1, level="basic")
    opts = open_session(b.stage_path("head"), st).get_session_options()
    assert opts.execution_mode == ort.ExecutionMode.ORT_PARALLEL and not opts.enable_cpu_mem_arena
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert opts.intra_op_num_threads == 1
    # a costly glance (paper's: 0.28 GMACs a snippet) goes one snippet per call through the pipeline
    from avgn_edge.runtime.ort import ONE_SNIPPET_FROM_GMACS, OrtBackend
    from avgn_edge.runtime.pipeline import HostPipeline
    assert OrtBackend(b).max_batch == {}
    b.provenance["gflops_per_clip"] = dict(gf, glance_visual=ONE_SNIPPET_FROM_GMACS * b.config.num_snippets)
    be = OrtBackend(b)
    assert be.max_batch == {"glance_visual": 1}
    assert HostPipeline(b, be).limit["glance_visual"] == 1 and HostPipeline(b, be).limit["glance_audio"] > 1
