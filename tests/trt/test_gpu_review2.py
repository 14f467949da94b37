"""The second GPU review's findings (shared/notes/gpu-review-2.md R1-R9), one test each.

gpu-marked tests run on a real GPU with TensorRT, else on the emulated GPU; the leak census of
tests/conftest.py runs after each (tests/gpu_census.py). The R2 cases make the crop kernel
uncompilable the three ways a machine can: no NVRTC, no cuda_fp16.h, an NVRTC error.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from avgn_edge.errors import AvgnError, EngineError, InputError, MissingDependency
from avgn_edge.runtime.backend import trt_available
from avgn_edge.runtime.compare import TOLERANCE, compare, decisions, snippet_stream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gpu():
    ok, why = trt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {why}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def stream():
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    cfg = get_preset("synth")
    return snippet_stream(open_dataset("synth:seed=1000,clips=3", cfg), 3, cfg.snippet_period)


def _load(backend, precision="fp32", **kw):
    from avgn_edge.runtime.recognizer import Recognizer
    return Recognizer.load("synth", backend=backend, precision=precision, stride=1, **kw)


# -- R1: a graph replays with the bindings it was captured with

@pytest.mark.gpu
def test_graphs_of_one_stream_replay_with_their_own_window(gpu, stream, engines):
    """A single stream's T graphs share one set of contexts, each capture binding them to another window
    start: every replay must find its own bindings (the emulator refuses a replay on re-bound contexts)."""
    rec = _load("trt", engines_dir=engines)
    try:
        got, want = decisions(rec, *stream), decisions(_load("ort", tensorrt_graph=True), *stream)
        report = compare(got, want, TOLERANCE["fp32"])
        T = rec.config.num_snippets
        assert len(rec.pipeline.graphs) == T and not rec.pipeline.graph_failed
        assert report["indices_agreement"] == 1.0 and report["max_abs_score"] <= TOLERANCE["fp32"], report
    finally:
        rec.close()


# -- R2: --backend auto falls back when the crop kernel cannot be compiled

def _break_kernel(monkeypatch, how: str) -> str:
    from avgn_edge.kernels import compile as kc
    from avgn_edge.kernels import launch

    def no_nvrtc():
        raise MissingDependency("NVRTC cannot be loaded (libnvrtc.so.13: cannot open shared object file)")

    def no_header():
        raise MissingDependency("the CUDA headers (cuda_fp16.h) needed to compile the crop kernel were not found")

    def nvrtc_error(*a, **k):
        raise kc.KernelCompileError("NVRTC: NVRTC_ERROR_COMPILATION\ncrop_resize.cu(1): error: bad")
    if how == "no-nvrtc":
        monkeypatch.setattr(kc, "_nvrtc", no_nvrtc)
        return "NVRTC cannot be loaded"
    if how == "no-header":
        monkeypatch.setattr(kc, "cuda_include_dir", no_header)
        return "cuda_fp16.h"
    monkeypatch.setattr(launch, "compile_cubin", nvrtc_error)
    return "NVRTC_ERROR_COMPILATION"


@pytest.mark.gpu
@pytest.mark.parametrize("how", ["no-nvrtc", "no-header", "nvrtc-error"])
def test_auto_falls_back_when_the_crop_kernel_cannot_be_compiled(gpu, engines, monkeypatch, caplog, how):
    why = _break_kernel(monkeypatch, how)
    caplog.set_level(logging.INFO)
    rec = _load("auto", engines_dir=engines)        # the census (conftest) fails the test if TrtBackend leaked
    try:
        assert rec.backend.name == "ort"
        lines = [r.getMessage() for r in caplog.records if "backend auto -> ort" in r.getMessage()]
        assert len(lines) == 1 and why in lines[0] and "\n" not in lines[0], lines
    finally:
        rec.close()
    with pytest.raises(AvgnError, match=why) as info:
        _load("trt", engines_dir=engines)
    assert "\n" not in str(info.value)


def _cli(args, env_extra=(), how="no-nvrtc"):
    code = ("import sys\nfrom avgn_edge.kernels import compile as kc\nfrom avgn_edge.errors import MissingDependency\n"
            "def gone(): raise MissingDependency('NVRTC cannot be loaded (libnvrtc.so: cannot open shared object file)')\n"
            "kc._nvrtc = gone\nfrom avgn_edge.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AVGN_EMULATE_GPU": "1", **dict(env_extra)}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.mark.slow
def test_cli_without_nvrtc_on_the_emulated_gpu(tmp_path):
    """The done-when: AVGN_EMULATE_GPU=1 and no NVRTC: auto runs on ONNX Runtime saying why in one line;
    trt fails with one line."""
    pytest.importorskip("cuda.bindings.driver")
    common = ["--precision", "fp32", "--duration", "2", "--engines", tmp_path / "e"]
    auto = _cli(["demo", "--backend", "auto", "--out", tmp_path / "auto", *common])
    assert auto.returncode == 0, auto.stderr[-3000:]
    said = [ln for ln in auto.stderr.splitlines() if "backend auto -> ort" in ln]
    assert len(said) == 1 and "NVRTC cannot be loaded" in said[0], auto.stderr[-3000:]
    trt = _cli(["demo", "--backend", "trt", "--out", tmp_path / "trt", *common])
    assert trt.returncode == 2 and "Traceback" not in trt.stderr, trt.stderr[-3000:]
    errors = [ln for ln in trt.stderr.splitlines() if "NVRTC cannot be loaded" in ln]
    assert len(errors) == 1, trt.stderr[-3000:]


# -- R3, R4, R5: capture errors

@pytest.mark.gpu
def test_a_capture_failing_inside_tensorrt_leaves_no_stale_error(gpu, stream, engines, monkeypatch, caplog):
    """TensorRT's cudart call refused during capture: the decision runs eagerly after, and the stale
    cudart error (cleared as trtexec does) does not fail the next enqueue."""
    from avgn_edge import emulator
    if not emulator.active():
        pytest.skip("injects the failure into the emulated TensorRT")
    from avgn_edge.emulator import streams as es
    from avgn_edge.emulator import trt_engine, trt_rules
    real = trt_engine.IExecutionContext.execute_async_v3

    def refuses_in_capture(self, stream_handle):
        s = es.stream_of(stream_handle)
        if s.capture is not None:
            es.invalidate(s.capture, "cudaMemsetAsync on a legacy stream inside TensorRT")
            trt_rules.set_cudart_error("cudaErrorStreamCaptureUnsupported")
            return False
        return real(self, stream_handle)
    monkeypatch.setattr(trt_engine.IExecutionContext, "execute_async_v3", refuses_in_capture)
    rec = _load("trt", engines_dir=engines)
    try:
        got = decisions(rec, *[part[:10] for part in stream])
        assert rec.pipeline.graph_failed and len(got) == 10 - rec.config.num_snippets + 1
        assert sum("CUDA graph capture failed" in r.getMessage() for r in caplog.records) == 1
    finally:
        rec.close()


@pytest.mark.gpu
@pytest.mark.parametrize("where", ["binding", "warm-up"])
def test_errors_outside_the_capture_are_what_they_are(gpu, stream, engines, monkeypatch, caplog, where):
    rec = _load("trt", engines_dir=engines)
    b = rec.backend
    real_bind, real_enqueue = b.bind, b.enqueue

    def bind(stage, addresses=None, contexts=None):
        if contexts is not None and stage == "head":
            raise EngineError("TensorRT refused address 0x100 for head's tensor gvecs (test)")
        return real_bind(stage, addresses, contexts)

    def enqueue(stage, contexts=None):
        if contexts is not None and stage == "decide":
            raise EngineError("TensorRT failed to enqueue decide (test)")
        return real_enqueue(stage, contexts)
    if where == "binding":
        monkeypatch.setattr(b, "bind", bind)
    else:
        monkeypatch.setattr(b, "enqueue", enqueue)
    try:
        with pytest.raises(EngineError, match="refused address" if where == "binding" else "failed to enqueue"):
            decisions(rec, *[part[:10] for part in stream])
        assert not rec.pipeline.graph_failed                       # graphs stay on for the process
        assert not any("capture failed" in r.getMessage() for r in caplog.records)
    finally:
        monkeypatch.undo()
        rec.close()


@pytest.mark.gpu
def test_no_graph_is_left_when_the_capture_body_raises(gpu, stream, engines, monkeypatch):
    from avgn_edge import emulator
    rec = _load("trt", engines_dir=engines)
    kernel = rec.pipeline.kernel
    real, calls = kernel.patches, []

    def patches(*a, **k):                         # the warm-up's launch passes, the captured one raises
        calls.append(1)
        if len(calls) == 2:
            raise InputError("bad crop shape (test)")
        return real(*a, **k)
    monkeypatch.setattr(kernel, "patches", patches)

    def graphs():                                 # the emulated context's live graphs (another test's may be there)
        from avgn_edge.emulator.device import STATE
        from avgn_edge.emulator.streams import Graph
        return {id(o) for o in STATE.primary.objects.values() if type(o) is Graph} if emulator.active() else set()
    before = graphs()
    try:
        with pytest.raises(InputError):
            decisions(rec, *[part[:8] for part in stream])
        assert graphs() <= before
    finally:
        monkeypatch.undo()
        rec.close()


# -- R6: a profile TensorRT does not have

def test_an_engine_without_a_profile_is_an_engine_error(emulated_gpu):
    from avgn_edge.bundle import load_bundle
    from avgn_edge.emulator.trt_rules import InvalidDims
    from avgn_edge.runtime.trt import TrtBackend

    class NoProfile:
        def get_tensor_profile_shape(self, name, index):
            return [InvalidDims()] * 3                      # what TensorRT returns: never a shorter list

    class Fake:
        bundle = load_bundle("synth")
        _said = TrtBackend._said
        logger = type("L", (), {"take": staticmethod(lambda: [])})()
    with pytest.raises(EngineError, match="no optimization profile"):
        TrtBackend._profile_max(Fake(), "decide", NoProfile())


# -- R9: LiveLoop.run returns only when inference is done

@pytest.mark.slow
def test_run_waits_for_the_decision_in_flight():
    from avgn_edge.data.synth import SynthSpec
    from avgn_edge.io.synthstream import SynthStream
    from avgn_edge.live.loop import LiveLoop
    from avgn_edge.runtime.recognizer import Recognizer
    rec = Recognizer.load("synth", backend="ort", precision="fp32")
    state = {"in": threading.Event(), "done": False}
    real_encode = rec.encode_many

    def encode_many(*a, **k):                         # live's inference runs on serve's scheduler
        if not state["in"].is_set():
            state["in"].set()
            time.sleep(6.5)                           # longer than run()'s thread-join timeout (5 s)
            state["done"] = True
        return real_encode(*a, **k)
    rec.encode_many = encode_many
    with SynthStream(SynthSpec.for_model(rec.config)) as video:
        loop = LiveLoop(rec, video, video.audio(rec.config.sample_rate), duration=0.6, stats_every=1e9)
        loop.run()
    assert state["in"].is_set() and state["done"], "run() returned while a decision was in flight"
    rec.close()


# -- the cuda alias

def test_no_cuda_alias_that_gives_jetpack_6_cuda_13_wheels():
    text = (ROOT / "setup.py").read_text()
    assert '"cuda12": CUDA12' in text and '"cuda13": CUDA13' in text
    assert '"cuda":' not in text.replace(" ", "")
