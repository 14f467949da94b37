"""Export to a bundle: ONNX per stage, contract, parity, TensorRT support, hash verification; precision variants."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from avgn_edge.bundle import STAGES, load_bundle  # noqa: E402
from avgn_edge.errors import BundleError, InputError  # noqa: E402
from avgn_edge.export.trt_support import check_graph  # noqa: E402


def test_bundle_contract_and_parity(tiny_export, tiny_cfg):
    b = load_bundle(tiny_export.root)
    assert b.config == tiny_cfg and b.precisions == ["fp32"]
    assert set(b.stages) == set(STAGES)
    dec = b.stages["decide"]
    assert [t.name for t in dec.outputs] == ["saliency", "indices", "centres"]
    assert dec.outputs[1].dtype == "int32" and dec.outputs[1].shape == (-1, tiny_cfg.top_k)
    assert b.stages["glance_visual"].batch.unit == "snippets" and dec.batch.unit == "decisions"
    for stage in STAGES:
        m = onnx.load(str(b.stage_path(stage)))
        assert m.opset_import[0].version == 17
        onnx.checker.check_model(m, full_check=True)
        assert check_graph(m, stage) == []              # every op/dtype is one TensorRT's parser takes
        for vi in list(m.graph.input) + list(m.graph.output):       # the leading dim is dynamic, the rest static
            dims = vi.type.tensor_type.shape.dim
            assert dims[0].dim_param == "batch" and all(d.dim_value > 0 for d in dims[1:]), (stage, vi.name)
        spec = b.stages[stage]
        assert all(t.shape[0] == -1 and t.at(5)[0] == 5 for t in spec.inputs + spec.outputs)
        lo, opt, hi = spec.batch.min, spec.batch.opt, spec.batch.max
        assert 1 == lo <= opt <= hi
    parity = b.variants["fp32"]["parity"]
    assert parity["batch_sizes"] == [1, 3, 8]
    for key in ("stages", "batch_vs_single"):           # vs PyTorch at every batch size; batched vs one by one
        for stage, outputs in parity[key].items():
            for name, stats in outputs.items():
                if "max_rel" in stats:
                    assert stats["max_rel"] < 1e-4, (key, stage, name, stats)
                else:
                    assert stats["equal_fraction"] == 1.0, (key, stage, name)
    assert parity["end_to_end"]["top1_agreement"] == 1.0
    assert parity["end_to_end"]["max_abs_score"] < 1e-4
    # ONNX Runtime's folded audio front end, checked against the exported graph on the parity inputs
    from avgn_edge.export.ort_rewrites import MAX_ERROR
    folded = b.variants["fp32"]["ort"]["rewrites"]["glance_audio"]
    assert folded["from"] == "fp32/glance_audio.onnx" and folded["error"] <= MAX_ERROR
    prov = b.provenance
    assert prov["checkpoint_sha256"] and prov["opset"] == 17 and "training" in prov


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle.root, dst)
    return dst


@pytest.fixture()
def export_copy(tiny_export, tmp_path):
    """A copy of this session's export: the precision checks' thresholds are held against the model
    they were set on, not the checked-in one."""
    dst = tmp_path / "e"
    shutil.copytree(tiny_export.root, dst)
    return dst


def test_changed_truncated_or_missing_files_are_refused(bundle_copy):
    f = bundle_copy / "fp32" / "head.onnx"
    data = f.read_bytes()
    f.write_bytes(data[:-10])
    with pytest.raises(BundleError, match="head.onnx has changed"):
        load_bundle(bundle_copy)
    f.unlink()
    with pytest.raises(BundleError, match="head.onnx is missing"):
        load_bundle(bundle_copy)
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="no model bundle"):
        load_bundle(bundle_copy / "nowhere")


def test_export_refuses_to_overwrite(tiny_run, tiny_export):
    from avgn_edge.export.onnx_export import export_bundle
    with pytest.raises(BundleError, match="already holds a bundle"):
        export_bundle(tiny_run, tiny_export.root)
    # --force never deletes a folder that is not a bundle
    precious = tiny_export.root.parent / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle"):
        export_bundle(tiny_run, precious, force=True)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_precision_variants(export_copy):
    from avgn_edge.precision.checks import qdq_problems
    from avgn_edge.precision.int8 import excluded_nodes
    from avgn_edge.precision.quantize import add_variant
    calib = "synth:seed=2000,clips=12"
    for p in ("fp16", "int8"):
        add_variant(export_copy, p, calib=calib, eval_data="synth:seed=1000,clips=40", progress=False)
    b = load_bundle(export_copy)
    assert b.precisions == ["fp32", "fp16", "int8"]
    for stage in STAGES:
        half = onnx.load(str(b.stage_path(stage, "fp16")))
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer), stage
        io = [v.type.tensor_type.elem_type for v in list(half.graph.input) + list(half.graph.output)]
        assert onnx.TensorProto.FLOAT16 not in io                      # I/O stays FP32
        q = onnx.load(str(b.stage_path(stage, "int8")))
        excluded = excluded_nodes(onnx.load(str(b.stage_path(stage, "fp32"))))
        problems = qdq_problems(q, excluded)
        assert problems in ([], ["no Q/DQ nodes at all"]), (stage, problems)
    # the front end stays FP32 in the FP16 audio graph, and is not quantized
    audio16 = onnx.load(str(b.stage_path("glance_audio", "fp16")))
    stft = [n for n in audio16.graph.node if n.op_type == "Conv" and "/frontend/" in n.name][0]
    weights = {i.name: i for i in audio16.graph.initializer}
    assert weights[stft.input[1]].data_type == onnx.TensorProto.FLOAT
    audio8 = onnx.load(str(b.stage_path("glance_audio", "int8")))
    assert sum(n.op_type == "QuantizeLinear" for n in audio8.graph.node) > 0
    for p in ("fp16", "int8"):
        acc = b.variants[p]["accuracy"]
        assert acc["clips"] == 40 and 0 <= acc["agreement_with_fp32"] <= 1
        # 40 clips of the tiny model (its scores sit close together): 0.875 measured for int8 with
        # this environment's wheels; the shipped models' variants are held to 1 point (docs/results.md)
        assert acc["agreement_with_fp32"] >= 0.85, (p, acc)
        assert b.variants[p]["stage_error_vs_fp32"]["head"]["scores"] < 0.2
    ev = b.variants["fp16"]["evidence"]
    assert "glance_audio_rel_error_all_fp16" in ev
    with pytest.raises(InputError):
        add_variant(export_copy, "int4")
    with pytest.raises(InputError, match="does not apply"):
        add_variant(export_copy, "fp16", backend="ort")
    _check_int8_ort(b)


def _check_int8_ort(b):
    """INT8 for ONNX Runtime (made beside TensorRT's by default): u8 activations, a form per stage chosen
    by measurement, what ``--precision int8`` runs on ONNX Runtime; TensorRT's graph stays reachable."""
    from onnx import numpy_helper

    from avgn_edge.precision.quantize import add_variant
    from avgn_edge.runtime.ort import OrtBackend
    entry = b.variants["int8"]["ort"]
    assert set(entry["forms"]) == set(STAGES) and set(entry["forms"].values()) <= {"qdq", "qoperator", "fp32"}
    assert all(set(v) >= {"fp32"} for v in entry["candidate_ms"].values())
    # every form's error against FP32 is measured, and none beyond the bound is chosen (home's audio graph
    # in uint8 was off by its whole range and cost 11 points)
    from avgn_edge.precision.int8_ort import MAX_STAGE_ERROR
    assert all(set(entry["candidate_error"][s]) == {"fp32", "qdq", "qoperator"} for s in STAGES)
    assert all(entry["candidate_error"][s][f] <= MAX_STAGE_ERROR for s, f in entry["forms"].items())
    assert all(set(entry["candidate_ms"][s]) == {f for f, e in entry["candidate_error"][s].items()
                                                 if e <= MAX_STAGE_ERROR} for s in STAGES)
    assert entry["accuracy"]["clips"] == 40 and entry["accuracy"]["agreement_with_fp32"] >= 0.85   # as above
    assert entry["recipe"]["activations"].startswith("uint8")
    quantized = [s for s, f in entry["forms"].items() if f != "fp32"]
    assert quantized, entry["candidate_ms"]                     # the local encoder at least is faster in INT8
    for stage in quantized:
        q = onnx.load(str(b.stage_path(stage, "int8", ort=True)))
        rewrite = entry["rewrites"].get(stage, {})           # a quantized audio graph may be folded too
        runs = rewrite["from"] if rewrite.get("chosen") else b.stage_path(stage, "int8", ort=True).relative_to(b.root)
        assert str(runs).startswith("int8-ort/"), stage
        zps = [numpy_helper.to_array(i) for i in q.graph.initializer if i.name.endswith("zero_point")]
        # activations unsigned (TensorRT's graph: int8 zero points only)
        assert any(z.dtype == np.uint8 for z in zps), stage
    ort_be, trt_be = OrtBackend(b, "int8"), OrtBackend(b, "int8", tensorrt_graph=True)
    assert (ort_be.graph, trt_be.graph) == ("ort", "tensorrt")
    feed = {t.name: np.random.default_rng(0).standard_normal(t.at(2)).astype(t.dtype)
            for t in b.stages["focus_local"].inputs}
    ref = OrtBackend(b, "fp32").run("focus_local", feed)["lvecs"]
    for be in (ort_be, trt_be):     # tracks FP32 (an unrelated graph is off by more than the whole range)
        got = be.run("focus_local", feed)["lvecs"]
        assert np.abs(got - ref).max() < 0.4 * np.abs(ref).max()   # 0.33 measured on this tiny model
    # re-making TensorRT's graph alone keeps ONNX Runtime's
    add_variant(b.root, "int8", calib="synth:seed=2000,clips=4", eval_data="synth:seed=1000,clips=8",
                progress=False, backend="trt")
    assert load_bundle(b.root).variants["int8"]["ort"]["forms"] == entry["forms"]
