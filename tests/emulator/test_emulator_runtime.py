"""What only the emulated GPU can see of the TensorRT runtime: handles and memory it leaves behind."""

from __future__ import annotations

import numpy as np
import pytest

from avgn_edge.errors import EngineError

pytest.importorskip("cuda.bindings.driver", reason="the emulator reuses cuda-bindings' types")


def _census() -> set:
    """Every live handle of the primary context and every live allocation (after collecting garbage)."""
    import gc
    from avgn_edge.emulator.device import STATE
    gc.collect()
    handles = {(type(o).__name__, h) for h, o in (STATE.primary.objects.items() if STATE.primary else [])}
    return handles | {(a.kind, a.base) for a in STATE.memory.device.live() + STATE.memory.pinned.live()}


def test_close_destroys_everything_and_nothing_touches_freed_memory(emulated_gpu, tmp_path):
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.emulator.device import STATE
    from avgn_edge.emulator.trt_engine import ContextScratch
    from avgn_edge.runtime.recognizer import Recognizer
    from avgn_edge.kernels.cuda_driver import PrimaryContext
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path).close()   # engines built
    other_user = PrimaryContext()      # another CUDA user keeps the context alive: what close leaves stays visible
    before = _census()
    rec = Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path, stride=1)
    for n in range(10):
        rec.push(clip.frames[n % 8], clip.audio[n % 8], n + 1.0)
    assert len(rec.pipeline.graphs) == 3                                    # windows 0, 1, 2 captured
    private = [a for a in STATE.memory.device.live() if isinstance(a.owner, ContextScratch)
               and ("device", a.base) not in before]
    assert private == []                                                    # one shared USER_MANAGED scratch
    rec.close()
    assert _census() - before == set()                                      # streams, events, graphs, module, memory
    with pytest.raises(EngineError, match="closed"):
        rec.push(clip.frames[0], clip.audio[0], 100.0)
    assert STATE.memory.pinned.poison_broken() == []                        # no write into freed pinned memory
    other_user.release()


def test_a_refused_binding_is_an_error_not_a_silent_old_address(emulated_gpu, tmp_path):
    from avgn_edge.runtime.trt import TrtBackend
    from avgn_edge.bundle import load_bundle
    with TrtBackend(load_bundle("synth"), "fp32", engines_dir=tmp_path) as b:
        with b.cuda.current():
            with pytest.raises(EngineError, match="gvec.*aligned"):
                b.bind("glance_visual", {"gvec": b.buffers["gvec"] + 64})
        out = b.run("glance_audio", {"wave": np.zeros((1, b.bundle.config.audio_samples), np.float32)})
        assert out["avec"].shape == b.bundle.stages["glance_audio"].outputs[0].at(1)


def _stream_results(rec, clip, n=12):
    out = []
    for i in range(n):
        r = rec.push(clip.frames[i % 8], clip.audio[i % 8], i + 1.0)
        if r is not None:
            out.append(r)
    return out


def test_a_device_that_cannot_capture_the_kernel_falls_back_cleanly(emulated_gpu, tmp_path, monkeypatch, caplog):
    """The crop kernel refused during capture (as a driver may refuse a launch it cannot capture): the
    decision runs eagerly from then on, with one warning, no capture left open, and right results."""
    from cuda.bindings import driver
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.emulator import streams
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    real_launch = driver.cuLaunchKernel

    def launch(f, gx, gy, gz, bx, by, bz, shmem, hStream, kernelParams, extra):
        s = streams.stream_of(hStream)
        if s.capture is not None:
            streams.invalidate(s.capture, "kernel launch refused")
            return (driver.CUresult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,)
        return real_launch(f, gx, gy, gz, bx, by, bz, shmem, hStream, kernelParams, extra)
    monkeypatch.setattr(driver, "cuLaunchKernel", launch)
    rec = Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path, stride=1)
    ort = Recognizer.load("synth", backend="ort", precision="fp16", stride=1)
    try:
        got, want = _stream_results(rec, clip), _stream_results(ort, clip)
        assert rec.pipeline.graph_failed and not rec.pipeline.graphs
        with rec.backend.cuda.current():
            status = driver.cuStreamIsCapturing(rec.backend.stream)[1]
        assert status == driver.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_NONE
        assert [r.label for r in got] == [r.label for r in want]
        assert max(float(np.abs(a.scores - b.scores).max()) for a, b in zip(got, want)) <= 1e-2
        assert sum("CUDA graph capture failed" in r.message for r in caplog.records) == 1
    finally:
        rec.close()


def test_only_enqueues_are_captured(emulated_gpu, tmp_path, monkeypatch):
    """As trtexec: tensors are bound and a warm-up enqueue runs before the capture; inside it only enqueues."""
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.emulator import streams
    from avgn_edge.emulator.device import STATE
    from avgn_edge.emulator.trt_engine import IExecutionContext
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    binds_in_capture = []
    real_bind = IExecutionContext.set_tensor_address

    def bind(self, name, memory):
        if streams.captures(STATE.require_context()):
            binds_in_capture.append(name)
        return real_bind(self, name, memory)
    monkeypatch.setattr(IExecutionContext, "set_tensor_address", bind)
    rec = Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path, stride=1)
    try:
        _stream_results(rec, clip, 10)
        assert len(rec.pipeline.graphs) == 3 and binds_in_capture == []
    finally:
        rec.close()


def _live_device_memory() -> set:
    import gc
    from avgn_edge.emulator.device import STATE
    gc.collect()
    return {a.base for a in STATE.memory.device.live()}


def test_a_window_that_is_gone_frees_its_device_rings_and_graphs(emulated_gpu, tmp_path):
    """A service's removed camera, a classified clip: each window has device rings of its own, freed
    (with the graphs that read them) on the pipeline's next call after the window is collected."""
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    rec = Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path, stride=1)
    try:
        _stream_results(rec, clip, 9)                                   # the Recognizer's own window
        p, before = rec.pipeline, _live_device_memory()
        own = {serial for layout in p.graphs for serial, _ in layout}
        rec.classify_snippets(clip.frames, clip.audio)                  # a window of its own, gone at return
        other = rec.new_window(stride=1)
        rec.encode_many([other.check(f, a, i + 1.0) for i, (f, a) in enumerate(zip(clip.frames, clip.audio))])
        rec.decide_many([other])
        assert len(p.pool) >= 2 and len({serial for layout in p.graphs for serial, _ in layout}) >= 2
        del other
        rec.push(clip.frames[1], clip.audio[1], 100.0)                  # the next call frees what is gone
        assert len(p.pool) == 1 and {serial for layout in p.graphs for serial, _ in layout} <= own
        assert _live_device_memory() == before
    finally:
        rec.close()


def test_a_new_frame_size_gets_a_new_frame_ring(emulated_gpu, tmp_path):
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    big = [np.repeat(np.repeat(f, 3, axis=0), 2, axis=1) for f in clip.frames]      # 384 x 256
    recs = [Recognizer.load("synth", backend=b, precision="fp16", stride=1, **kw)
            for b, kw in (("trt", {"engines_dir": tmp_path}), ("ort", {}))]
    try:
        out = []
        for rec in recs:
            _stream_results(rec, clip, 9)
            if rec is recs[0]:
                small = {serial for layout in rec.pipeline.graphs for serial, _ in layout}
            out.append([rec.push(f, a, 20.0 + i) for i, (f, a) in enumerate(zip(big, clip.audio))][-1])
        got, want = out
        graphs = recs[0].pipeline.graphs
        assert small and graphs and not small & {serial for layout in graphs for serial, _ in layout}
        assert got.label == want.label and float(np.abs(got.scores - want.scores).max()) <= 1e-2
        np.testing.assert_allclose(got.boxes, want.boxes, atol=0.5)     # in the new frame's pixels
        cfg = recs[0].config
        assert np.allclose(got.boxes[:, 2] - got.boxes[:, 0], cfg.patch_size / cfg.frame_size * 256)
        assert recs[0].pipeline.pool._windows.popitem()[1].frame_shape == big[0].shape
    finally:
        recs[0].close()


def test_a_call_larger_than_the_engine_profile_is_refused_on_the_host_path(emulated_gpu, tmp_path):
    from avgn_edge.bundle import load_bundle
    from avgn_edge.errors import InputError
    from avgn_edge.runtime.trt import TrtBackend
    b = load_bundle("synth")
    with TrtBackend(b, "fp32", engines_dir=tmp_path) as backend:
        top = b.stages["glance_audio"].batch.max
        assert backend.max_batch["glance_audio"] == top
        S = b.config.audio_samples
        assert backend.run("glance_audio", {"wave": np.zeros((top, S), np.float32)})["avec"].shape[0] == top
        with pytest.raises(InputError, match=f"batch {top + 1} is outside the engine's 1..{top}"):
            backend.run("glance_audio", {"wave": np.zeros((top + 1, S), np.float32)})


def test_frames_beyond_the_staging_buffer_go_in_the_next_call(emulated_gpu, tmp_path, monkeypatch):
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.runtime import trt_pipeline
    from avgn_edge.runtime.recognizer import Recognizer
    clip = open_dataset("synth:seed=1000,clips=1", get_preset("synth"))[0]
    monkeypatch.setattr(trt_pipeline, "STAGING", 3 * clip.frames[0].nbytes)
    rec = Recognizer.load("synth", backend="trt", precision="fp16", engines_dir=tmp_path)
    sizes, set_batch = [], rec.backend.set_batch

    def record(stage, n):
        if stage == "glance_visual":
            sizes.append(n)
        set_batch(stage, n)
    rec.backend.set_batch = record
    try:
        got = rec.classify_snippets(clip.frames, clip.audio)                   # T = 8 snippets: calls of 3, 3, 2
        want = Recognizer.load("synth", backend="ort", precision="fp16").classify_snippets(clip.frames, clip.audio)
        assert sizes == [3, 3, 2] and got.label == want.label
        assert float(np.abs(got.scores - want.scores).max()) <= 1e-2
    finally:
        rec.close()
