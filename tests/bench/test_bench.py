"""The benchmark's fast mode runs and reports what it promises (timings are never asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avgn_edge.bench import jetson
from avgn_edge.bundle import STAGES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_fast_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "bench", "--fast", "--json",
                          "--write-docs", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT,
                         env={**os.environ})
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout)
    assert set(r["ratios"]) >= {"avgn_vs_dense", "ort_vs_torch", "int8_vs_fp32", "ring_vs_reencode"}
    assert all(v > 0 for v in r["ratios"].values())
    # AVGN against the dense graph at its faster thread count; PyTorch eager timed apart from them
    ms = r["clips"]["clip_ms"]
    dense = min(ms["dense_ort_fp32"]["p50_ms"], ms["dense_ort_fp32_1thread"]["p50_ms"])
    assert r["ratios"]["avgn_vs_dense"] == pytest.approx(dense / ms["avgn_ort_fp32"]["p50_ms"], rel=2e-3)
    assert "after the interleaved" in r["clips"]["notes"]["torch"]
    assert {"snippets_per_s", "decision_latency_p95_ms"} <= set(r["live"]["fp32"]) and "int8" in r["live"]
    assert set(r["stages"]) >= {"ort/fp32", "ort/fp16", "ort/int8", "numpy/crop"}
    assert r["machine"]["peak_gflops"] > 0 and r["memory_mb"]["peak_rss"] > 0
    assert r["cost"]["gflops_per_clip"]["dense"] > r["cost"]["gflops_per_clip"]["avgn"]
    st = r["streams"]
    assert {"max_realtime_streams", "max_realtime_streams_batch1", "runs", "clip_throughput"} <= set(st)
    assert {x["mode"] for x in st["runs"]} == {"batched", "batch1"} and all("latency_p95_ms" in x for x in st["runs"])
    assert st["clip_throughput"]["clips_per_s"]["batched"] > 0
    assert st["source"].startswith("replay") and all(x["source"] == "replay" for x in st["runs"])
    assert st["search"]["limit"] >= 512 and st["search"]["bisect"]      # --fast searches to the limit too
    rt = st["rtsp"]                                     # real decoding: the camera farm, or one line why not
    assert set(rt) == {"skipped"} or (rt["max_realtime_cameras"] >= 0 and rt["cpu_ms_per_camera_s"]["decode"] > 0)
    md = (tmp_path / "benchmarks.md").read_text()
    assert "prediction, not a measurement" in md and "avgn-edge bench --backend trt" in md
    assert (tmp_path / "accuracy_vs_gflops.png").stat().st_size > 10_000


@pytest.mark.slow
def test_bench_preset_random_weights(tmp_path):
    """--preset: a random-weight bundle made on the fly (cached), the same tables, speed only."""
    docs = tmp_path / "docs"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "bench", "--preset", "tiny", "--fast", "--json",
                          "--write-docs", str(docs)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout)
    assert r["random_weights"] and r["preset"] == "tiny" and "accuracy" not in r and "streams" not in r
    assert {"avgn_vs_dense", "int8_vs_fp32", "ring_vs_reencode", "ring_int8_vs_fp32"} <= set(r["ratios"])
    assert all(v > 0 for v in r["ratios"].values())
    assert {"ort/fp32", "ort/int8", "numpy/crop"} <= set(r["stages"]) and "glance_visual@T" in r["stages"]["ort/fp32"]
    assert set(r["live"]) == {"fp32", "int8"} and all(v["decisions"] > 0 for v in r["live"].values())
    assert set(r["sessions"]) == set(STAGES)
    assert all(v["batch1"]["chosen_ms"] > 0 and "arena=off" in v["batch1"] for v in r["sessions"].values())
    assert set(r["cost"]["achieved_gflops"]) == {"ort/fp32", "ort/int8"}
    assert set(r["int8_ort"]["forms"]) == set(STAGES)
    md = (docs / "benchmarks.md").read_text()
    assert "## Preset `tiny`: random weights, speed only" in md and "no accuracy" in md
    assert json.loads((docs / "measured" / "bench-tiny.json").read_text())["preset"] == "tiny"
    assert len(list((tmp_path / "cache" / "avgn-edge" / "bench").glob("tiny-*/done"))) == 1


def test_jetson_prediction_reproduces_its_published_anchors():
    for p in ("fp16", "int8"):
        for gmacs, ms in jetson.PUBLISHED.values():
            assert jetson.predict_ms(gmacs, p) == pytest.approx(ms[p], abs=1e-3)
    assert jetson.predict_ms(4.1, "int8", "agx_orin") == pytest.approx(0.636, abs=1e-3)


def test_emulated_gpu_results_are_labelled(emulated_gpu):
    from avgn_edge.bench import measure, report
    r = json.loads((ROOT / "docs" / "measured" / "bench.json").read_text())
    assert "EMULATED" not in report.markdown(r)
    r["emulated_gpu"] = {"emulated": True}
    assert report.markdown(r).startswith("**EMULATED GPU**")
    assert measure.row_key("trt", "fp16") == "trt-emulated/fp16" and measure.row_key("ort", "fp16") == "ort/fp16"
