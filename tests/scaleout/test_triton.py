"""Triton: repositories checked against Triton's model configuration schema, and a real tritonserver
(the one in the nvidia-pytriton wheel, started by ``avgn-edge triton-local`` on free 127.0.0.1
ports, stopped afterwards) serving the ``--platform python`` repository to the Triton backend."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("tritonclient.grpc")
from google.protobuf import text_format  # noqa: E402

from avgn_edge.bundle import STAGES, load_bundle  # noqa: E402
from avgn_edge.errors import BackendError, InputError  # noqa: E402
from avgn_edge.triton.local import free_port  # noqa: E402
from avgn_edge.triton.repository import export_repository, model_config_pb2, read_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TYPES = {"float32": "TYPE_FP32", "int32": "TYPE_INT32"}


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def records(text: str) -> dict:
    """path -> JSON record without its timings (measurements, not predictions)."""
    out = {}
    for line in text.splitlines():
        d = json.loads(line)
        d.pop("timings_ms", None)
        out[d["path"]] = d
    return out


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("synth")


def fake_engines(bundle, folder: Path, ccs=("8.7", "9.0"), gpu="Orin"):
    """An engine cache as build-engines writes it (plans are placeholders: real TensorRT is not installed
    here, and only the files' selection by their sidecars is under test)."""
    from avgn_edge.trt.cache import EngineKey, engine_filename, io_spec, store_engine
    for stage in STAGES:
        for cc in ccs:
            b = bundle.stages[stage].batch
            key = EngineKey(stage, "fp16", bundle.files[bundle.variants["fp16"]["files"][stage]], "10.3.0", gpu,
                            cc, "12.6", "", io_spec(bundle.stages[stage].inputs), io_spec(bundle.stages[stage].outputs),
                            (b.min, b.opt, b.max // (2 if cc == "9.0" else 1)), 1024, 3)
            store_engine(folder / engine_filename(key), b"plan " + stage.encode(), key)


@pytest.mark.parametrize("platform", ["onnxruntime", "tensorrt", "python"])
def test_every_config_follows_tritons_schema_and_the_manifest(tmp_path, bundle, platform):
    precision = "fp16" if platform == "tensorrt" else "fp32"
    fake_engines(bundle, tmp_path / "engines")
    repo = tmp_path / "repo"
    export_repository(bundle, repo, precision, platform, engines=tmp_path / "engines")
    configs = {p.parent.name: read_config(p) for p in repo.glob("*/config.pbtxt")}   # strict text_format parse
    assert set(configs) == {f"avgn_{s}" for s in STAGES} | {"avgn_encode", "avgn_focus_head"}
    for stage in STAGES:
        cfg, spec = configs[f"avgn_{stage}"], bundle.stages[stage]
        top = spec.batch.max // 2 if platform == "tensorrt" else spec.batch.max     # the smallest plan's profile
        assert cfg.max_batch_size == top
        assert list(cfg.dynamic_batching.preferred_batch_size) == sorted({min(spec.batch.opt, top), top})
        for served, tensors in ((cfg.input, spec.inputs), (cfg.output, spec.outputs)):
            assert [(t.name, list(t.dims), model_config_pb2().DataType.Name(t.data_type)) for t in served] == \
                   [(t.name, list(t.shape[1:]), TYPES[t.dtype]) for t in tensors]
        want_sha = bundle.files[bundle.variants[precision]["files"][stage]]
        assert cfg.parameters["avgn_onnx_sha256"].string_value == want_sha
        vdir = repo / f"avgn_{stage}" / "1"
        if platform == "tensorrt":
            assert cfg.platform == "tensorrt_plan" and dict(cfg.cc_model_filenames) == {
                "8.7": "model.sm87.plan", "9.0": "model.sm90.plan"}
            assert (vdir / "model.sm90.plan").read_bytes() == b"plan " + stage.encode()
        else:
            from avgn_edge.bundle import sha256
            assert sha256(vdir / "model.onnx") == want_sha
            assert (cfg.platform, cfg.backend) == (("onnxruntime_onnx", "") if platform == "onnxruntime"
                                                   else ("", "python"))
    names = {t.name for s in STAGES for t in bundle.stages[s].inputs + bundle.stages[s].outputs}
    for chain in ("encode", "focus_head"):
        cfg = configs[f"avgn_{chain}"]
        assert cfg.platform == "ensemble" and (repo / f"avgn_{chain}" / "1").is_dir()
        for step in cfg.ensemble_scheduling.step:
            assert step.model_name in configs and set(step.input_map) | set(step.output_map) <= names


def test_the_schema_check_is_strict(tmp_path, bundle):
    export_repository(bundle, tmp_path, "fp32", "onnxruntime")
    path = tmp_path / "avgn_decide" / "config.pbtxt"
    good = path.read_text()
    for bad in (good.replace("max_batch_size", "max_batchsize"), good.replace("TYPE_FP32", "TYPE_FLOAT32", 1)):
        path.write_text(bad)
        with pytest.raises(text_format.ParseError):
            read_config(path)


def test_tensorrt_needs_engines_built_from_this_bundle(tmp_path, bundle):
    with pytest.raises(InputError, match="needs --engines"):
        export_repository(bundle, tmp_path / "r", "fp16", "tensorrt")
    fake_engines(bundle, tmp_path / "e")
    with pytest.raises(InputError, match="no TensorRT engine for glance_visual \\(fp32\\)"):
        export_repository(bundle, tmp_path / "r", "fp32", "tensorrt", engines=tmp_path / "e")
    from avgn_edge.emulator import LABEL
    fake_engines(bundle, tmp_path / "emulated", gpu=LABEL)           # an emulated GPU's engines are no plans
    with pytest.raises(InputError, match="on a real GPU"):
        export_repository(bundle, tmp_path / "r", "fp16", "tensorrt", engines=tmp_path / "emulated")
    res = cli("export-triton", "synth", "--out", tmp_path / "r", "--platform", "tensorrt")
    assert res.returncode == 2 and res.stderr.startswith("error: --platform tensorrt needs --engines")


def test_triton_local_refuses_what_it_cannot_serve(tmp_path, bundle):
    export_repository(bundle, tmp_path / "ort", "fp32", "onnxruntime")
    for repo, message in ((tmp_path / "ort", "needs Triton's ONNX Runtime or TensorRT backend"),
                          (tmp_path / "none", "is not a Triton model repository")):
        res = cli("triton-local", repo, "--http-port", free_port(), timeout=60)
        assert res.returncode == 2 and message in res.stderr.splitlines()[0], res.stderr


# -- a real server ----------------------------------------------------------------------------------

class Server:
    def __init__(self, repo: Path):
        self.ports = [free_port() for _ in range(3)]
        self.url, self.grpc_url = f"http://127.0.0.1:{self.ports[0]}", f"grpc://127.0.0.1:{self.ports[1]}"
        self.metrics_url = f"http://127.0.0.1:{self.ports[2]}/metrics"
        self.cli = subprocess.Popen([sys.executable, "-m", "avgn_edge.cli.main", "triton-local", str(repo),
                                     "--http-port", str(self.ports[0]), "--grpc-port", str(self.ports[1]),
                                     "--metrics-port", str(self.ports[2])], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
        timer = threading.Timer(300, self.cli.kill)          # bounded: a server that never comes up fails the test
        timer.start()
        self.banner = self.cli.stdout.readline()
        timer.cancel()
        if not self.banner.startswith("serving"):
            self.stop()
            pytest.fail(f"triton-local did not start: {self.banner}")

    @property
    def pid(self) -> int:
        """The tritonserver process (the CLI's child)."""
        children = Path(f"/proc/{self.cli.pid}/task/{self.cli.pid}/children").read_text().split()
        return int(children[0])

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)

    def stop(self):
        if self.cli.poll() is None:
            self.cli.send_signal(signal.SIGTERM)
            try:
                self.cli.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.cli.pid, signal.SIGKILL)
                self.cli.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory, bundle):
    repo = tmp_path_factory.mktemp("triton") / "repo"
    export_repository(bundle, repo, "fp32", "python")
    s = Server(repo)
    try:
        yield s
    finally:
        s.resume() if s.cli.poll() is None else None
        s.stop()
        assert s.cli.returncode == 0, "triton-local did not stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout")
    res = cli("synth", "--out", out, "--clips", 12, "--seed", 4242)
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_run_against_triton_gives_the_local_predictions(server, heldout, protocol):
    url = server.url if protocol == "http" else server.grpc_url
    local = cli("run", heldout, "--json", "--backend", "ort")
    remote = cli("run", heldout, "--json", "--backend", "triton", "--triton-url", url)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr[-800:]
    a, b = records(local.stdout), records(remote.stdout)
    assert len(a) == 12 and a.keys() == b.keys()
    for path in a:
        assert [t["label"] for t in a[path]["top"]] == [t["label"] for t in b[path]["top"]]
        assert [t["score"] for t in a[path]["top"]] == pytest.approx([t["score"] for t in b[path]["top"]], abs=1e-4)
        assert a[path]["selected"] == b[path]["selected"] and a[path]["boxes"] == b[path]["boxes"]


@pytest.mark.slow
def test_eight_concurrent_streams_are_batched_by_the_server(server):
    from avgn_edge.triton.loadgen import run_streams
    res = run_streams(server.grpc_url, server.metrics_url, streams=8, decisions=8)
    assert not res["errors"] and res["decisions"] == 64
    for stage in STAGES:                              # Triton's own counters: requests of different
        m = res["models"][f"avgn_{stage}"]            # clients joined into fewer executions
        assert m["items"] == m["requests"] and m["executions"] < m["requests"], (stage, m)


@pytest.mark.slow
def test_server_down_model_missing_and_another_version_end_in_one_line(server, heldout):
    clip = sorted(heldout.glob("*.mp4"))[0]
    cases = [(("--triton-url", f"http://127.0.0.1:{free_port()}"), "the server is unreachable"),
             (("--triton-url", server.grpc_url, "--triton-prefix", "other_"), "has no ready model 'other_glance_visual'"),
             (("--triton-url", server.url, "--precision", "fp16"), "version mismatch: Triton's avgn_glance_visual"),
             (("--triton-url", "ftp://x"), "not a Triton URL")]
    for extra, message in cases:
        res = cli("run", clip, "--backend", "triton", *extra, timeout=60)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 2 and len(errors) == 1 and message in errors[0], res.stderr[-800:]
        assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_a_call_that_times_out_is_a_backend_error(server, bundle):
    import numpy as np
    from avgn_edge.runtime.backend import open_backend
    for url in (server.url, server.grpc_url):
        with open_backend(bundle, "triton", url=url, timeout=1.0) as be:
            server.pause()
            try:
                t = time.monotonic()
                with pytest.raises(BackendError, match="timed out after 1 s"):
                    be.run("glance_audio", {"wave": np.zeros((1, bundle.config.audio_samples), np.float32)})
                assert time.monotonic() - t < 5
            finally:
                server.resume()


@pytest.mark.slow
def test_serve_and_live_count_failed_calls_and_keep_running(server):
    from serve_rigs import running_service, wait_for

    from avgn_edge.io.synthstream import SynthStream
    from avgn_edge.data.synth import SynthSpec
    from avgn_edge.live.loop import LiveLoop
    from avgn_edge.runtime.recognizer import Recognizer
    model = {"backend": "triton", "triton_url": server.grpc_url, "triton_timeout": 0.5}
    with running_service({"model": model, "cameras": {f"c{i}": {"source": f"synth://?seed={i}"} for i in range(2)}}) \
            as (svc, _):
        decisions = lambda: sum(st.stats.decisions for st in svc.stream_list())   # noqa: E731
        wait_for(lambda: decisions() > 0, 60, what="decisions through Triton")
        server.pause()
        try:
            wait_for(lambda: sum(svc.scheduler.failed_calls.values()) >= 2, 30, what="failed calls counted")
            assert svc.readiness()[0] and svc.scheduler.alive
            from prometheus_client import generate_latest
            assert 'avgn_backend_failed_calls_total{phase="encode"}' in generate_latest(svc.registry).decode()
        finally:
            server.resume()
        before = decisions()
        wait_for(lambda: decisions() > before, 60, what="decisions after the server came back")
    rec = Recognizer.load("synth", backend="triton", url=server.url, timeout=0.5, stride=1)
    threading.Timer(2.0, server.pause).start()
    threading.Timer(3.5, server.resume).start()
    with rec, SynthStream(SynthSpec.for_model(rec.config)) as video:
        summary = LiveLoop(rec, video, video.audio(16000), duration=7.0).run()
    assert summary["failed_calls"] >= 1 and summary["decisions"] >= 3, summary
