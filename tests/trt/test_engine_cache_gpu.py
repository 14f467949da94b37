"""The engine cache and the TensorRT commands end to end (pytest -m gpu; on the emulated GPU in CI).

Hit, miss with the reason named, an engine from another TensorRT or a corrupt one rebuilt with a
message, atomic writes; `--backend auto` falling back when an engine cannot be built; and the
done-when commands: `build-engines` twice, `demo --backend trt` against the ONNX Runtime demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_trt import make_bundle

from avgn_edge.bundle import STAGES, load_bundle
from avgn_edge.errors import EngineError
from avgn_edge.trt import build as trt_build
from avgn_edge.trt.cache import sidecar_path

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def gpu():
    from avgn_edge.runtime.backend import trt_available
    ok, why = trt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {why}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle"), precisions=("fp32",))


def _load(bundle, folder, **kw):
    said = []
    items = trt_build.load_engines(bundle, "fp32", folder, log=said.append, **kw)
    return items, said


def test_hit_and_miss_with_the_reason(bundle, tmp_path):
    items, said = _load(bundle, tmp_path)
    assert [i.stage for i, _ in items] == list(STAGES) and all("building" in s for s in said if "built" not in s)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.engine")}
    assert len(mtimes) == 5 and all(sidecar_path(p).is_file() for p in mtimes)
    assert not list(tmp_path.rglob("*.tmp"))                          # written atomically, nothing left over
    _, said = _load(bundle, tmp_path)
    assert said == [f"{s}: cached {tmp_path / i.engine_path.name}" for s, (i, _) in zip(STAGES, items)]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    _, said = _load(bundle, tmp_path, workspace_mib=512)
    assert all("(workspace_mib: 1024 -> 512)" in s for s in said if "building" in s) and len(said) == 10


def test_a_batch_1_engine_is_rebuilt_for_the_bundles_batch_profile(tmp_path):
    """The profile (batch min/opt/max) is in the key: engines built for batch 1 (an older recipe, or a
    bundle whose manifest said 1/1/1) are never taken for batched ones, and the reason says so."""
    from avgn_edge.bundle import BatchRange
    one = {unit: BatchRange(unit, 1, 1, 1) for unit in ("snippets", "decisions")}
    batch1 = make_bundle(tmp_path / "batch1", precisions=("fp32",), batch=one)
    batched = make_bundle(tmp_path / "batched", precisions=("fp32",))          # the same graphs, default ranges
    items, _ = _load(batch1, tmp_path / "e")
    assert [e.get_tensor_profile_shape(batch1.stages[i.stage].inputs[0].name, 0)[2][0] for i, e in items] == [1] * 5
    items, said = _load(batched, tmp_path / "e")
    rebuilt = [s for s in said if "building" in s]
    assert len(rebuilt) == 5, said
    for (item, engine), line in zip(items, rebuilt):
        b = batched.stages[item.stage].batch
        assert f"(batch: [1, 1, 1] -> [{b.min}, {b.opt}, {b.max}])" in line, line
        top = engine.get_tensor_profile_shape(batched.stages[item.stage].inputs[0].name, 0)
        assert [tuple(d)[0] for d in top] == [b.min, b.opt, b.max]
    _, said = _load(batched, tmp_path / "e")
    assert all(": cached " in s for s in said) and len(said) == 5


@pytest.mark.parametrize("damage", ["other TensorRT", "corrupt"])
def test_an_engine_that_does_not_deserialize_is_rebuilt_with_a_message(bundle, tmp_path, damage):
    items, _ = _load(bundle, tmp_path)
    path = items[2][0].engine_path
    data = bytearray(path.read_bytes())
    if damage == "other TensorRT":
        data[24] = (data[24] + 1) % 256            # the plan's version tag (trtexec --getPlanVersionOnly reads it)
    else:
        middle = len(data) // 2
        data[middle: middle + 16] = bytes(16)
    path.write_bytes(bytes(data))                  # same size: the sidecar alone cannot tell
    items2, said = _load(bundle, tmp_path)
    rebuilt = [s for s in said if "building" in s]
    assert len(rebuilt) == 1 and "decide" in rebuilt[0] and "does not deserialize" in rebuilt[0], said
    assert path.read_bytes() != bytes(data) and items2[2][1] is not None


def test_errors_reach_the_stage_that_caused_them(bundle, tmp_path):
    """One logger for the process (TensorRT keeps the first one): a later stage's build error is in
    that stage's message, not lost in an earlier stage's list."""
    import onnx
    from onnx import TensorProto, helper
    _load(bundle, tmp_path / "ok")                                     # earlier builds in this process
    spec = bundle.stages["head"]
    out = spec.outputs[0]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], [out.name])], "dyn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *out.shape[1:]])],
                              [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, ["n", *out.shape[1:]])])
    path = tmp_path / "dynamic.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    item = trt_build.plan(bundle, "fp32", tmp_path / "dyn", env=trt_build.probe_environment())[4]
    item = trt_build.PlanItem(item.stage, path, item.engine_path, item.key, False, "test")
    with pytest.raises(EngineError, match=r"build head \(.*profile"):      # 'x' is dynamic, not in the profile
        trt_build.build_stage(trt_build.import_tensorrt(), item, spec, tmp_path / "timing.cache", log=lambda s: None)


def test_auto_falls_back_to_onnx_runtime_when_an_engine_cannot_be_built(tmp_path, caplog):
    import onnx
    from onnx import TensorProto, helper
    from avgn_edge.runtime.backend import open_backend
    b = make_bundle(tmp_path / "b", precisions=("fp32",))
    spec = b.stages["head"]
    out = spec.outputs[0]
    nodes = [helper.make_node("Constant", [], ["m"], value=helper.make_tensor("v", TensorProto.FLOAT, [2, 2],
                                                                                [1, 2, 3, 4])),
             helper.make_node("Det", ["m"], ["d"], name="the_det"),
             helper.make_node("Expand", ["d", "shape"], [out.name], name="expand")]
    shape = helper.make_tensor("shape", TensorProto.INT64, [len(out.shape)], list(out.at(1)))
    dims = lambda t: ["batch", *t.shape[1:]]                                                          # noqa: E731
    g = helper.make_graph(nodes, "head", [helper.make_tensor_value_info(t.name, TensorProto.INT32 if t.dtype == "int32"
                                                                         else TensorProto.FLOAT, dims(t))
                                           for t in spec.inputs],
                          [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, dims(out))], initializer=[shape])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), b.root / "fp32" / "head.onnx")
    b.variants["fp32"]["files"]["head"] = b.add_file("fp32/head.onnx")
    b.save()
    b = load_bundle(b.root)
    with pytest.raises(EngineError, match="the_det"):
        open_backend(b, "trt", "fp32", engines_dir=tmp_path / "e")
    backend = open_backend(b, "auto", "fp32", engines_dir=tmp_path / "e")
    assert backend.name == "ort" and any("the_det" in r.message for r in caplog.records)


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def synth_engines(tmp_path_factory):
    """`build-engines synth --precision fp16 --out DIR` (the done-when command), then again: all reused."""
    out = tmp_path_factory.mktemp("synth-engines")
    first = cli("build-engines", "synth", "--precision", "fp16", "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("building") == 5 and "5 engines ready" in first.stdout
    return out, first


@pytest.mark.slow
def test_build_engines_twice_reuses_all(synth_engines):
    out, first = synth_engines
    assert len(list(out.glob("*.engine"))) == 5 and len(list(out.glob("*.json"))) == 5
    again = cli("build-engines", "synth", "--precision", "fp16", "--out", out)
    assert again.returncode == 0 and again.stdout.count(": cached ") == 5 and "building" not in again.stdout
    dry = cli("build-engines", "synth", "--precision", "fp16", "--out", out, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count(" HIT ") == 5, dry.stdout


def _events(folder: Path) -> list[tuple[str, float]]:
    """(label, onset on the stream's clock) of the confident events (peak score >= 0.9) of a demo run.
    The stream's clock: seconds since its first ground-truth event started (runs start at different times)."""
    t0 = json.loads((folder / "summary.json").read_text())["ground_truth"][0]["t_start"]
    records = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return [(r["label"], round(r["onset"] - t0, 3)) for r in records if r["type"] == "offset" and r["peak"] >= 0.9]


@pytest.mark.slow
def test_demo_with_trt_matches_the_onnx_runtime_demo(synth_engines, tmp_path):
    """Same stream (seed, duration), TensorRT vs ONNX Runtime: the same events, onsets within three
    snippets (the demo is real time: each run samples the stream at its own instants, a frame apart
    or more on a busy machine, which can move a borderline onset by a snippet)."""
    engines, _ = synth_engines
    runs = {}
    for backend in ("trt", "ort"):
        out = tmp_path / backend
        # quiet 0.8: an event every ~3 s (the default stream is quiet 90% of the time)
        res = cli("demo", "--backend", backend, "--precision", "fp16", "--duration", "24", "--seed", "3",
                  "--quiet", "0.8", "--out", out, "--engines", engines)
        assert res.returncode == 0, res.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["backend"] == backend and summary["emulated_gpu"] == (backend == "trt" and emulator_on())
        runs[backend] = _events(out)
    print("\ndemo events (label, onset s):", runs)
    trt, ort = runs["trt"], runs["ort"]
    # events paired by onset (within three snippets): the same label; at most one event of
    # either run unpaired (a borderline one, or one ending just before the other's last)
    pairs = [(a, b) for a in trt for b in ort if abs(a[1] - b[1]) <= 0.75]
    assert len(pairs) >= 3 and max(len(trt), len(ort)) - len(pairs) <= 1, runs
    assert all(a[0] == b[0] for a, b in pairs), runs


def emulator_on() -> bool:
    from avgn_edge import emulator
    return emulator.requested()


@pytest.mark.slow
def test_check_with_trt_compares_every_decision_and_labels_the_device(synth_engines):
    pytest.importorskip("torch", reason="check compares with the PyTorch checkpoint")
    engines, _ = synth_engines
    res = cli("check", "--backend", "trt", "--precision", "fp16", "--clips", "3", "--json", "--engines", engines)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["device"]["backend"] == "trt" and out["device"]["emulated"] == emulator_on()
    assert out["device"]["gpu_name"] == "avgn-edge emulated GPU" or not emulator_on()
    t = out["trt_vs_ort"]
    assert t["decisions"] == 3 * 8 - 8 + 1 and t["window_starts"] == list(range(8))
    assert t["top1_agreement"] + t["top1_ties"] / t["decisions"] == 1.0 and t["max_abs_score"] <= 1e-2
    human = cli("check", "--backend", "trt", "--precision", "fp16", "--clips", "2", "--engines", engines)
    assert human.returncode == 0 and (human.stdout.startswith("EMULATED GPU") == emulator_on()), human.stdout
