"""TensorRT engines: the parser-support check, the engine cache, the build plan and the CLI, all
without TensorRT; the TensorRT API names used, checked against the bindings of 10.3 and 11.4.
The GPU tests that build engines and compare them with ONNX Runtime: test_trt_engines_gpu.py.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from avgn_edge.bundle import Bundle, load_bundle, stage_specs
from avgn_edge.config import get_preset
from avgn_edge.errors import BundleError, EngineError, InputError, MissingDependency
from avgn_edge.export.trt_support import check_graph, load_table, require_supported
from avgn_edge.trt import build as trt_build
from avgn_edge.trt import cache
from avgn_edge.trt.build import Environment, build_engines, io_problems, plan
from avgn_edge.trt.cache import EngineKey, check_cached, engine_filename, sidecar_path, store_engine, write_atomic

REPO = Path(__file__).resolve().parents[2]
KNOWN = Environment(trt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", cuda_driver_version="12.6",
                    l4t_release="R36.4.3", problem=None)

# ---------------------------------------------------------------------------------------------
# helpers: tiny ONNX graphs and a fake bundle


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _model(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _np_elem(dtype: str):
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _stage_graph(spec):
    """Inputs and outputs as the spec says; each output a constant (the cache never looks inside)."""
    nodes = [helper.make_node("Constant", [], [t.name], name=f"c_{t.name}",
                              value=helper.make_tensor(t.name + "_v", _np_elem(t.dtype), list(t.at(1)),
                                                       np.zeros(t.at(1), t.dtype).ravel().tolist()))
             for t in spec.outputs]
    dims = lambda t: ["batch" if d == -1 else d for d in t.shape]          # noqa: E731
    return _model(nodes, [_vi(t.name, _np_elem(t.dtype), dims(t)) for t in spec.inputs],
                  [_vi(t.name, _np_elem(t.dtype), dims(t)) for t in spec.outputs], name=spec.name)


def make_bundle(root: Path, precisions=("fp32", "fp16"), batch=None) -> Bundle:
    cfg = get_preset("tiny")
    specs = stage_specs(cfg, glance_channels=8, glance_map=4, glance_dim=16, audio_dim=8, local_dim=12, batch=batch)
    bundle = Bundle(root, cfg, specs, {}, {})
    for prec in precisions:
        (root / prec).mkdir(parents=True, exist_ok=True)
        rels = {}
        for stage, spec in specs.items():
            rel = f"{prec}/{stage}.onnx"
            onnx.save(_stage_graph(spec), root / rel)
            rels[stage] = bundle.add_file(rel)
        bundle.variants[prec] = {"files": rels, "accuracy": {}}
    bundle.save()
    return load_bundle(root)


def _key(**changes) -> EngineKey:
    base = EngineKey(stage="decide", precision="fp16", onnx_sha256="a" * 64, trt_version="10.3.0",
                     gpu_name="Orin", compute_capability="8.7", cuda_driver_version="12.6", l4t_release="R36.4.3",
                     inputs=(("gvecs", (-1, 4, 16), "float32"),), outputs=(("indices", (-1, 1), "int32"),),
                     batch=(1, 8, 32), workspace_mib=1024, builder_optimization_level=3)
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------
# the parser-support check


def test_op_table_records_its_source():
    t = load_table()
    assert t["source"]["repo"] == "onnx/onnx-tensorrt" and len(t["source"]["commit"]) == 40
    assert t["opset_range"][0] == 9 and t["opset_range"][1] >= 20
    ops = t["operators"]
    assert ops["Conv"]["supported"] and "FP16" in ops["Conv"]["dtypes"]
    assert not ops["Det"]["supported"] and "INT8" in ops["DequantizeLinear"]["dtypes"]


def _good_model():
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["y"], ["z"], name="relu"),
             helper.make_node("ReduceMax", ["z"], ["m"], name="max", keepdims=0),   # opset 17: attribute axes
             helper.make_node("Equal", ["m", "m"], ["eq"], name="eq")]               # BOOL out is fine
    return _model(nodes, [_vi("x", TensorProto.FLOAT, (1, 3, 8, 8))],
                  [_vi("z", TensorProto.FLOAT, (1, 4, 8, 8)), _vi("eq", TensorProto.BOOL, ())], [w])


def test_good_graph_passes():
    assert check_graph(_good_model(), "glance_visual") == []
    require_supported({"glance_visual": _good_model()})


def test_unsupported_operator_is_named():
    m = _model([helper.make_node("Det", ["x"], ["d"], name="the_det")],
               [_vi("x", TensorProto.FLOAT, (3, 3))], [_vi("d", TensorProto.FLOAT, ())])
    problems = check_graph(m, "decide")
    assert len(problems) == 1 and all(s in problems[0] for s in ("decide", "the_det", "Det", "FP32"))
    with pytest.raises(BundleError) as exc:
        require_supported({"glance_visual": _good_model(), "decide": m})
    assert "decide" in str(exc.value) and "the_det" in str(exc.value) and exc.value.hint


def test_unsupported_dtype_is_named():
    m = _model([helper.make_node("MatMul", ["a", "b"], ["c"], name="int_mm")],
               [_vi("a", TensorProto.INT32, (2, 3)), _vi("b", TensorProto.INT32, (3, 2))],
               [_vi("c", TensorProto.INT32, (2, 2))])
    problems = check_graph(m, "head")
    assert problems and all(s in problems[0] for s in ("int_mm", "MatMul", "INT32"))


def test_qdq_int8_passes_but_int32_bias_dequantize_fails():
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zp = helper.make_tensor("zp", TensorProto.INT8, [], [0])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="dq"),
             helper.make_node("Relu", ["dq"], ["y"], name="relu")]
    good = _model(nodes, [_vi("x", TensorProto.FLOAT, (4,))], [_vi("y", TensorProto.FLOAT, (4,))], [scale, zp])
    assert check_graph(good, "focus_local") == []
    # ONNX Runtime's quantize_static quantizes biases to INT32 unless QuantizeBias=False: TensorRT can't
    bias = helper.make_tensor("b32", TensorProto.INT32, [4], [1, 2, 3, 4])
    zp32 = helper.make_tensor("zp32", TensorProto.INT32, [], [0])
    bad = _model([helper.make_node("DequantizeLinear", ["b32", "s", "zp32"], ["y"], name="bias_dq")],
                 [], [_vi("y", TensorProto.FLOAT, (4,))], [bias, scale, zp32])
    assert any("bias_dq" in p and "INT32" in p for p in check_graph(bad, "decide"))


def test_custom_domain_and_opset_are_flagged():
    m = _model([helper.make_node("Gelu", ["x"], ["y"], name="ms_gelu", domain="com.microsoft")],
               [_vi("x", TensorProto.FLOAT, (4,))], [_vi("y", TensorProto.FLOAT, (4,))])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert any("ms_gelu" in p and "com.microsoft" in p for p in check_graph(m, "head"))
    new = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_vi("x", TensorProto.FLOAT, (4,))],
                 [_vi("y", TensorProto.FLOAT, (4,))], opset=23)
    assert any("opset 23" in p for p in check_graph(new, "head"))


# ---------------------------------------------------------------------------------------------
# the engine cache


def test_key_round_trip_and_names(tmp_path):
    key = _key()
    assert EngineKey.from_dict(json.loads(json.dumps(key.to_dict()))) == key
    assert engine_filename(key) == "decide.fp16.sm87.trt10.3.0.engine"
    assert engine_filename(_key(gpu_name="avgn-edge emulated GPU")) == "decide.fp16.sm87.trt10.3.0.emulated.engine"
    assert sidecar_path(tmp_path / engine_filename(key)).name == "decide.fp16.sm87.trt10.3.0.json"
    assert engine_filename(_key(trt_version="unknown", compute_capability="unknown")) == \
        "decide.fp16.sm-unknown.trt-unknown.engine"
    tc = cache.timing_cache_path(tmp_path, "10.3.0", "Orin (nvgpu)", "8.7")
    assert tc.parent.name == "timing" and "trt10.3.0" in tc.name and "sm87" in tc.name and "orin-nvgpu" in tc.name


def test_check_cached_hit_and_every_mismatch(tmp_path):
    key = _key()
    path = tmp_path / engine_filename(key)
    assert check_cached(path, key) == (False, "no engine")
    store_engine(path, b"plan-bytes", key)
    assert check_cached(path, key) == (True, "cached")
    assert check_cached(path, _key(trt_version="10.16.1")) == (False, "trt_version: 10.3.0 -> 10.16.1")
    changed = {"stage": "head", "precision": "int8", "onnx_sha256": "b" * 64, "gpu_name": "Thor",
               "compute_capability": "11.0", "cuda_driver_version": "13.0", "l4t_release": "R39.0",
               "inputs": (("gvecs", (-1, 8, 16), "float32"),), "outputs": (("indices", (-1, 2), "int32"),),
               "batch": (1, 1, 1), "workspace_mib": 512, "builder_optimization_level": 5, "recipe": "avgn-edge 9.9 r9"}
    assert set(changed) | {"trt_version"} == {f.name for f in dataclasses.fields(EngineKey)}
    for field, value in changed.items():
        ok, reason = check_cached(path, _key(**{field: value}))
        assert not ok and reason.startswith(f"{field}: ") and " -> " in reason, reason
    assert check_cached(path, _key(batch=(1, 1, 1))) == (False, "batch: [1, 8, 32] -> [1, 1, 1]")
    path.write_bytes(b"plan-bytes+garbage")
    assert check_cached(path, key)[1].startswith("engine file size differs")
    sidecar_path(path).write_text("{not json")
    assert check_cached(path, key)[1].startswith("sidecar unreadable")
    sidecar_path(path).unlink()
    assert check_cached(path, key) == (False, "sidecar unreadable: file not found")


def test_atomic_write_survives_a_crash(tmp_path, monkeypatch):
    key, path = _key(), tmp_path / "e" / "decide.fp16.sm87.trt10.3.0.engine"

    def crash(fd):
        raise OSError("power cut")

    monkeypatch.setattr(cache.os, "fsync", crash)
    with pytest.raises(OSError):
        store_engine(path, b"x" * 1000, key)
    assert not path.exists() and not sidecar_path(path).exists()
    assert list(path.parent.iterdir()) == []                          # no temp file left behind
    monkeypatch.undo()
    # a crash while replacing a cached engine: the old engine stays whole, its sidecar is gone
    store_engine(path, b"old", key)
    monkeypatch.setattr(cache.os, "fsync", crash)
    with pytest.raises(OSError):
        store_engine(path, b"new-engine", key)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and not sidecar_path(path).exists()
    assert check_cached(path, key)[0] is False
    # a crash while writing the sidecar (after the engine): engine present, no sidecar, rebuilt next time
    real_write = cache.write_atomic

    def crash_on_sidecar(p, data):
        if str(p).endswith(".json"):
            raise OSError("power cut")
        return real_write(p, data)

    monkeypatch.setattr(cache, "write_atomic", crash_on_sidecar)
    with pytest.raises(OSError):
        store_engine(path, b"new-engine", key)
    monkeypatch.undo()
    assert path.read_bytes() == b"new-engine" and not sidecar_path(path).exists()
    write_atomic(tmp_path / "plain.bin", b"ok")
    assert (tmp_path / "plain.bin").read_bytes() == b"ok"


def test_cache_dir_fallback(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")                                            # engines/ would have to live in a file
    monkeypatch.setattr(cache, "DEFAULT_DIR", blocker / "engines")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    said = []
    assert cache.resolve_cache_dir(None, log=said.append) == tmp_path / "xdg" / "avgn-edge" / "engines"
    assert said and "not writable" in said[0]
    with pytest.raises(EngineError):
        cache.resolve_cache_dir(blocker / "x")
    assert cache.resolve_cache_dir(tmp_path / "mine") == tmp_path / "mine"


def test_l4t_release(tmp_path):
    f = tmp_path / "nv_tegra_release"
    f.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed\n")
    assert cache.read_l4t_release(str(f)) == "R36.4.3"
    assert cache.read_l4t_release(str(tmp_path / "missing")) == ""


# ---------------------------------------------------------------------------------------------
# the build plan, the no-TensorRT path and the CLI


def test_plan_without_tensorrt(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    items = plan(bundle, "fp16", tmp_path / "eng", env=Environment())
    assert [i.stage for i in items] == ["glance_visual", "glance_audio", "decide", "focus_local", "head"]
    assert all(not i.hit and i.reason == trt_build.NO_TRT for i in items)
    assert items[2].engine_path == tmp_path / "eng" / "decide.fp16.sm-unknown.trt-unknown.engine"
    assert items[2].key.onnx_sha256 == bundle.files["fp16/decide.onnx"]
    assert not (tmp_path / "eng").exists()                            # a dry run writes nothing


def test_plan_hits_and_misses(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    out = tmp_path / "eng"
    items = plan(bundle, "fp32", out, env=KNOWN)
    assert all(i.reason == "no engine" for i in items)
    assert items[0].engine_path.name == "glance_visual.fp32.sm87.trt10.3.0.engine"
    for i in items:
        store_engine(i.engine_path, b"engine", i.key)
    assert all(i.hit for i in plan(bundle, "fp32", out, env=KNOWN))
    assert all(i.reason == "--force" for i in plan(bundle, "fp32", out, force=True, env=KNOWN))
    assert plan(bundle, "fp32", out, workspace_mib=512, env=KNOWN)[0].reason == "workspace_mib: 1024 -> 512"
    newer = dataclasses.replace(KNOWN, trt_version="10.16.1")
    assert plan(bundle, "fp32", out, env=newer)[0].reason == "no engine"   # other file name, other cache slot
    # without TensorRT the plan still says what the existing engine was built for
    assert "TensorRT 10.3.0 on Orin" in plan(bundle, "fp32", out, env=Environment())[0].reason
    with pytest.raises(InputError):
        plan(bundle, "int8", out, env=KNOWN)


def test_io_problems():
    spec = stage_specs(get_preset("tiny"), 8, 4, 16, 8, 12)["head"]
    io = [(t.name, True, t.shape, t.dtype) for t in spec.inputs] + [(t.name, False, t.shape, t.dtype)
                                                                    for t in spec.outputs]
    assert io_problems(spec, io) == []
    io[0] = (io[0][0], True, (1,) + tuple(io[0][2]), "float16")
    problems = io_problems(spec, io[:-1])
    assert any("gvecs" in p and "float16" in p for p in problems) and any("missing output 'scores'" in p
                                                                          for p in problems)


def test_build_engines_without_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)               # import tensorrt -> ImportError
    bundle = make_bundle(tmp_path / "b")
    with pytest.raises(MissingDependency) as exc:
        build_engines(bundle, "fp16", tmp_path / "eng")
    assert "JetPack" in str(exc.value) and "system-site-packages" in exc.value.hint
    assert "tensorrt-cu12" in exc.value.hint and "\n" not in str(exc.value)


def test_device_info_fails_cleanly_or_reports_a_gpu():
    try:
        info = trt_build.device_info()
    except (EngineError, MissingDependency) as exc:                  # the CPU-only case: short, with a hint
        assert exc.hint and len(str(exc)) < 250
    else:
        assert info["gpu_name"] and "." in info["compute_capability"]


def test_cli_dry_run(tmp_path, monkeypatch, capsys):
    from avgn_edge.cli.main import main
    bundle = make_bundle(tmp_path / "b")
    monkeypatch.setattr(trt_build, "probe_environment", lambda: Environment())
    code = main(["build-engines", str(bundle.root), "--precision", "fp16", "--dry-run", "--out", str(tmp_path / "e")])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if ".engine" in line]
    assert len(lines) == 5 and all("BUILD" in line and trt_build.NO_TRT in line for line in lines)
    assert "focus_local.fp16.sm-unknown.trt-unknown.engine" in out


def test_cli_without_tensorrt_exits_2(tmp_path, monkeypatch, capsys):
    from avgn_edge.cli.main import main
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    bundle = make_bundle(tmp_path / "b")
    assert main(["build-engines", str(bundle.root), "--precision", "fp16", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TensorRT is not installed") and "hint:" in err and "Traceback" not in err
    assert main(["build-engines", str(bundle.root), "--precision", "int8", "--dry-run"]) == 2   # no int8 variant


# ---------------------------------------------------------------------------------------------
# TensorRT API names. Convention (also stated in avgn_edge/trt/build.py): TensorRT objects are held
# in variables named as below, so every attribute used on them can be found statically and checked
# against the names compiled into the TensorRT Python bindings of each supported version.

TRT_VARIABLES = {"trt", "builder", "network", "config", "parser", "parser_error", "profile", "engine", "context",
                 "runtime", "logger", "timing_cache", "serialized", "plan", "plan_bytes", "inspector"}
CHECKED_FILES = ["avgn_edge/trt/build.py", "avgn_edge/runtime/trt.py", "tests/trt/test_trt.py", "tests/trt/test_trt_engines_gpu.py"]
SUPPORTED = ["10.3.0", "11.4.0.106"]          # JetPack 6.1/6.2, and the current x86/SBSA line


def _names_dir() -> Path | None:
    # a copy of shared/data/tensorrt-python-names lives in tests/data so CI has it
    for d in (os.environ.get("AVGN_TRT_NAMES_DIR"), REPO / "tests" / "data" / "tensorrt-python-names"):
        if d and (Path(d) / "10.3.0.txt").is_file():
            return Path(d)
    return None


def trt_attributes(source: str) -> dict[str, int]:
    """Attribute names used on TensorRT objects -> first line. Chains are followed through method
    calls and subscripts (``config.get_timing_cache().serialize()`` yields both names), not through
    plain function calls (``plan(...)[0].reason`` is ours). Dunder names are
    Python's or set by the tensorrt package's __init__.py (``__version__``), not the bindings."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        chain, cur = [], node
        while True:
            if isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            elif isinstance(cur, ast.Call) and isinstance(cur.func, ast.Attribute):   # a method's result
                cur = cur.func
            elif isinstance(cur, ast.Subscript):
                cur = cur.value
            else:
                break
        if isinstance(cur, ast.Name) and cur.id in TRT_VARIABLES:
            for name in chain:
                if not name.startswith("__"):
                    found.setdefault(name, node.lineno)
    return found


def missing_names(names, version: str, names_dir: Path) -> list[str]:
    listed = (names_dir / f"{version}.txt").read_text().split()
    exact = set(listed)
    # the linker merges a short string into a longer one ending with it, so a tail match counts
    return sorted(n for n in names if n not in exact and not any(s.endswith(n) for s in listed))


def test_name_checker_can_fail():
    names_dir = _names_dir()
    if names_dir is None:
        pytest.fail("TensorRT name lists missing from tests/data/tensorrt-python-names")
    old_code = ("config.max_workspace_size = 1 << 30\n"
                "engine = builder.build_engine(network, config)\n"
                "if builder.platform_has_fast_fp16:\n    config.int8_calibrator = calibrator\n"
                "config.set_flag(trt.BuilderFlag.FP16)\n")
    names = trt_attributes(old_code)
    assert {"max_workspace_size", "build_engine", "platform_has_fast_fp16", "int8_calibrator"} <= set(names)
    assert {"build_engine", "max_workspace_size"} <= set(missing_names(names, "10.3.0", names_dir))
    assert not {"platform_has_fast_fp16", "int8_calibrator"} & set(missing_names(names, "10.3.0", names_dir))
    assert {"build_engine", "max_workspace_size", "platform_has_fast_fp16", "int8_calibrator"} <= \
        set(missing_names(names, "11.4.0.106", names_dir))
    assert trt_attributes("x = config.get_timing_cache().serialize()\ny = trt.__version__") == \
        {"get_timing_cache": 1, "serialize": 1}


def test_tensorrt_names_exist_in_supported_versions():
    names_dir = _names_dir()
    if names_dir is None:
        pytest.fail("TensorRT name lists missing from tests/data/tensorrt-python-names")
    problems, checked = [], 0
    for rel in CHECKED_FILES:
        path = REPO / rel
        if not path.is_file():
            continue
        names = trt_attributes(path.read_text())
        checked += len(names)
        for version in SUPPORTED:
            problems += [f"{rel}:{names[n]}: {n} is not in TensorRT {version}"
                         for n in missing_names(names, version, names_dir)]
    assert checked > 20, "the convention found almost no TensorRT calls: was build.py renamed?"
    assert not problems, "\n".join(problems)
