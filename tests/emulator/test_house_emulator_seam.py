"""The emulated GPU is a plugin above the product: it starts where the environment asks (not on
``import avgn_edge``), the product learns of it only through deps.py, and its TensorRT parser
judges graphs by its own table, so the product's table can be caught out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_importing_the_package_starts_nothing_the_entry_does():
    pytest.importorskip("cuda.bindings")
    code = ("import sys, avgn_edge\nfrom avgn_edge import deps\n"
            "print(deps.gpu_emulated(), 'tensorrt' in sys.modules)\n"
            "deps.start_requested()\nprint(deps.gpu_emulated(), deps.gpu_stand_in()['gpu_name'])\n")
    res = _run(code, AVGN_EMULATE_GPU="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["False False", "True avgn-edge emulated GPU"]
    off = _run(code.replace("['gpu_name']", ""), AVGN_EMULATE_GPU="0")
    assert off.stdout.splitlines() == ["False False", "False None"], off.stderr


def test_the_seam_reports_the_stand_in_only_while_it_is_there(emulated_gpu):
    from avgn_edge import deps
    from avgn_edge.emulator import deactivate
    assert deps.gpu_emulated() and deps.gpu_stand_in()["gpu_name"] == deps.EMULATED_GPU_NAME
    deactivate()
    assert not deps.gpu_emulated() and deps.gpu_stand_in() is None


def _stft_graph():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    nodes = [helper.make_node("STFT", ["signal", "step"], ["spec"], name="stft", onesided=1),
             helper.make_node("Identity", ["spec"], ["y"], name="out")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, 256, 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 33, 2])],
                          initializer=[helper.make_tensor("step", TensorProto.INT64, [], [64])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def test_the_tables_are_two_readings_and_disagree():
    from avgn_edge.emulator.trt_parser import TABLE
    from avgn_edge.export.trt_support import TABLE_PATH
    ours, theirs = json.loads(TABLE_PATH.read_text()), json.loads(TABLE.read_text())
    assert set(theirs) == {"10", "11"} and all("onnx/onnx-tensorrt" in t["source"] for t in theirs.values())
    assert theirs["10"]["source"] != ours["source"]["commit"]
    differ = sorted(op for op in set(ours["operators"]) | set(theirs["10"]["operators"])
                    if ours["operators"].get(op, {}).get("supported") != theirs["10"]["operators"].get(op, {}).get("supported"))
    assert "STFT" in differ                                     # 10.8 (the product's) has it; 10.1 does not


def test_a_graph_the_product_passes_the_emulated_parser_refuses(emulated_gpu):
    """The product's table says STFT imports; the emulated TensorRT 10.3's own table says it does not,
    and the emulated parser says so: a wrong product table no longer confirms itself."""
    from avgn_edge.export.trt_support import check_graph
    model = _stft_graph()
    assert check_graph(model, "stage") == []
    trt = emulated_gpu
    logger = trt.Logger(trt.Logger.ERROR)
    parser = trt.OnnxParser(trt.Builder(logger).create_network(0), logger)
    assert parser.parse(model.SerializeToString()) is False
    err = parser.get_error(0)
    assert (err.node_operator(), err.code()) == ("STFT", trt.ErrorCode.UNSUPPORTED_NODE)


def test_the_emulated_parser_reads_the_table_of_its_own_version(emulated_gpu):
    from avgn_edge.emulator import tensorrt as emu_trt
    from avgn_edge.emulator.trt_parser import problems
    model = _stft_graph()
    assert problems(model, "10.3.0") and problems(model, "11.4.0.106") == []    # 10.15's table (for 11) has STFT
    eleven = emu_trt.module("11.4.0.106")
    logger = eleven.Logger(eleven.Logger.ERROR)
    network = eleven.Builder(logger).create_network(1 << int(eleven.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert eleven.OnnxParser(network, logger).parse(model.SerializeToString()) is True


def test_a_version_without_a_table_is_one_clear_error():
    from avgn_edge.emulator.trt_parser import table
    from avgn_edge.errors import EngineError
    with pytest.raises(EngineError, match=r"no parser table \(it has TensorRT 10.x, 11.x\)"):
        table("12.0.0")
