"""GPU tests of the TensorRT pipeline (run on a Jetson or any CUDA machine: pytest -m gpu).

They skip here with the reason; they never fake a result.
"""

import numpy as np
import pytest

from avgn_edge.runtime.backend import trt_available

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu():
    ok, why = trt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {why}")


@pytest.fixture(scope="module")
def clips():
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    return open_dataset("synth:seed=1000,clips=50", get_preset("synth"))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_trt_pipeline_matches_ort(gpu, clips, precision):
    from avgn_edge.runtime.recognizer import Recognizer
    trt_rec = Recognizer.load("synth", backend="trt", precision=precision)
    ort_rec = Recognizer.load("synth", backend="ort", precision=precision)
    agree, diffs = [], []
    for i in range(len(clips)):
        s = clips[i]
        a, b = trt_rec.classify_snippets(s.frames, s.audio), ort_rec.classify_snippets(s.frames, s.audio)
        agree.append(a.label == b.label)
        diffs.append(np.abs(a.scores - b.scores).max())
    assert np.mean(agree) >= 0.98, (precision, np.mean(agree))
    assert np.median(diffs) < {"fp32": 1e-3, "fp16": 1e-2, "int8": 5e-2}[precision]


def test_cuda_graph_replay_equals_plain_execution(gpu, clips):
    from avgn_edge.runtime.recognizer import Recognizer
    graph = Recognizer.load("synth", backend="trt", precision="fp16", cuda_graph=True)
    plain = Recognizer.load("synth", backend="trt", precision="fp16", cuda_graph=False)
    if graph.pipeline.graph_failed:
        pytest.skip("CUDA graph capture is not supported here (the pipeline fell back, as designed)")
    T = graph.config.num_snippets
    for i in range(3):
        s = clips[i]
        # push 2T snippets so every window start is replayed from a captured graph
        for n in range(2 * T):
            t = (i * 2 * T + n + 1) * 0.25
            r1 = graph.push(s.frames[n % T], s.audio[n % T], t)
            r2 = plain.push(s.frames[n % T], s.audio[n % T], t)
            assert (r1 is None) == (r2 is None)
            if r1 is not None:
                np.testing.assert_array_equal(r1.indices, r2.indices)
                np.testing.assert_allclose(r1.scores, r2.scores, atol=1e-5)
    assert graph.pipeline.graphs, "no graph was captured"


def test_trt_host_io_stage_parity(gpu, clips):
    """Each engine alone, fed the same inputs as ONNX Runtime (the backend's host I/O path)."""
    from avgn_edge.bundle import load_bundle
    from avgn_edge.precision.calibrate import RecordingBackend
    from avgn_edge.runtime.ort import OrtBackend
    from avgn_edge.runtime.pipeline import HostPipeline
    from avgn_edge.runtime.recognizer import Recognizer
    from avgn_edge.runtime.trt import TrtBackend
    b = load_bundle("synth")
    rec_backend = RecordingBackend(OrtBackend(b, "fp32"), 64)
    Recognizer(b, rec_backend, HostPipeline(b, rec_backend)).classify_snippets(clips[0].frames, clips[0].audio)
    with TrtBackend(b, "fp32") as trt_backend:
        for stage, feeds in rec_backend.feeds.items():
            for feed in feeds[:4]:
                want = rec_backend.inner.run(stage, feed)
                got = trt_backend.run(stage, feed)
                for name in want:
                    np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-3, err_msg=f"{stage}.{name}")
