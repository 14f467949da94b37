"""``avgn-edge tune``: each stage's ONNX Runtime threads and call size measured, stored per machine,
and followed by OrtBackend (runtime/plan.py, bench/tune.py)."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from avgn_edge.bench.tune import choose
from avgn_edge.runtime import plan as plans


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """Plans go to a private cache: never the user's (a plan there would change every other test)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_choose_one_thread_unless_all_cores_win_by_the_margin_and_cap_only_a_loss():
    # all cores 3% better: within the margin, one thread; per item still falling at the biggest batch: no cap
    assert choose({1: {1: 1.0, 2: 0.6, 4: 0.5}, 2: {1: 0.9, 2: 0.55, 4: 0.485}}) == {"threads": 1}
    # all cores 20% better
    assert choose({1: {1: 1.0, 2: 0.6}, 2: {1: 0.8, 2: 0.5}}) == {"threads": 0}
    # paper's FP32 glance: a bigger call is slower per item (its activations leave the cache): capped at the best
    assert choose({1: {1: 13.0, 2: 12.0, 4: 13.5, 8: 15.0}, 2: {1: 14.0, 2: 13.0, 4: 14.0, 8: 16.0}}) == \
        {"threads": 1, "max_call": 2}
    # slower at the biggest batch, but within CAP_MARGIN of the best: not worth splitting
    assert choose({1: {1: 1.0, 2: 0.50, 4: 0.52}, 2: {1: 1.0, 2: 0.6, 4: 0.6}}) == {"threads": 1}
    # synth's glance on the quiet machine: one thread for a stream's snippet, all cores for 64 at once
    assert choose({1: {1: 0.128, 2: 0.075, 8: 0.066, 64: 0.066}, 2: {1: 0.153, 2: 0.097, 8: 0.078, 64: 0.045}}) == \
        {"threads": 1, "all_cores_from": 64}
    # all cores winning only in the middle (noise): not from there on, so one thread
    assert choose({1: {1: 1.0, 2: 0.6, 4: 0.5}, 2: {1: 1.1, 2: 0.5, 4: 0.6}}) == {"threads": 1}


def test_calls_from_the_plans_size_run_on_the_all_cores_session(tiny_bundle, cache):
    from avgn_edge.runtime.ort import OrtBackend
    plans.save_plan(tiny_bundle, "fp32", {"glance_audio": {"threads": 1, "all_cores_from": 4}}, {})
    be = OrtBackend(tiny_bundle)
    assert be.sessions["glance_audio"].get_session_options().intra_op_num_threads == 1
    assert be.sessions["glance_audio@all"].get_session_options().intra_op_num_threads == 0
    used = []

    class Spy:
        def __init__(self, name, sess):
            self.name, self.sess = name, sess

        def run(self, *a):
            used.append(self.name)
            return self.sess.run(*a)
    for name in ("glance_audio", "glance_audio@all"):
        be.sessions[name] = Spy(name, be.sessions[name])
    wave = np.random.default_rng(0).standard_normal((5, tiny_bundle.config.audio_samples)).astype(np.float32)
    small, big = be.run("glance_audio", {"wave": wave[:3]}), be.run("glance_audio", {"wave": wave})
    assert used == ["glance_audio", "glance_audio@all"]
    np.testing.assert_allclose(small["avec"], big["avec"][:3], atol=1e-5)      # the same graph either way


def test_a_measured_plan_is_followed_explicit_threads_win_and_calls_are_split(tiny_bundle, cache):
    from avgn_edge.bench.tune import tune
    from avgn_edge.runtime.ort import OrtBackend
    from avgn_edge.runtime.pipeline import HostPipeline, Timer
    plan, measured, path = tune(tiny_bundle, "fp32", reps=2, max_batch=4)
    assert path.startswith(str(cache)) and set(plan) == set(measured) - {"load_average"}
    assert all(set(measured[s]) >= {"1"} and set(measured[s]["1"]) == {"1", "2", "4"} for s in plan)
    # the measured plan is what the backend loads ...
    assert OrtBackend(tiny_bundle).plan == plan
    # ... and a plan says both the threads and the call size: write one the rules would never choose
    doc = json.loads(open(path).read())
    doc["stages"] = {"glance_audio": {"threads": 2, "max_call": 3}}     # the others: the built-in rules
    open(path, "w").write(json.dumps(doc))
    be = OrtBackend(tiny_bundle)
    opts = be.sessions["glance_audio"].get_session_options()
    assert opts.intra_op_num_threads == 2 and be.max_batch == {"glance_audio": 3}
    calls = []
    run = be.run
    be.run = lambda stage, feeds: calls.append((stage, len(next(iter(feeds.values()))))) or run(stage, feeds)
    pipe = HostPipeline(tiny_bundle, be)
    waves = np.zeros((8, tiny_bundle.config.audio_samples), np.float32)
    out = pipe.run_chain("encode", {"glance": np.zeros((8, 3, tiny_bundle.config.glance_size,
                                                         tiny_bundle.config.glance_size), np.float32),
                                    "wave": waves}, Timer())
    assert len(out["avec"]) == 8
    assert [n for s, n in calls if s == "glance_audio"] == [3, 3, 2]
    assert [n for s, n in calls if s == "glance_visual"] == [8]
    # explicit threads win over the plan (no plan read at all)
    be1 = OrtBackend(tiny_bundle, threads=1)
    assert be1.plan is None and be1.sessions["glance_audio"].get_session_options().intra_op_num_threads == 1


def test_a_plan_from_another_machine_or_a_broken_one_is_ignored_with_one_line(tiny_bundle, cache, caplog):
    from avgn_edge.runtime.ort import OrtBackend
    path = plans.save_plan(tiny_bundle, "fp32", {"decide": {"threads": 2}}, {})
    doc = json.loads(path.read_text())
    doc["machine"]["cpu"] = "Some Other CPU"
    path.write_text(json.dumps(doc))
    caplog.set_level(logging.INFO)
    assert OrtBackend(tiny_bundle).plan is None
    assert [r.getMessage() for r in caplog.records if "another machine" in r.getMessage()] == [
        f"ort: the tuning plan {path} was measured on another machine (Some Other CPU, "
        f"{doc['machine']['cores']} cores, onnxruntime {doc['machine']['onnxruntime']}): not used"]
    path.write_text("{not json")
    assert OrtBackend(tiny_bundle).plan is None
    assert any("ignoring the tuning plan" in r.getMessage() and "run avgn-edge tune again" in r.getMessage()
               for r in caplog.records)


def test_tune_cli_writes_a_plan_and_names_bad_arguments(tiny_bundle, cache):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "tune", "--bundle", str(tiny_bundle.root),
                                     *a], capture_output=True, text=True, env=env, timeout=300)
    res = run("--precision", "fp32", "--reps", "2", "--max-batch", "2")
    assert res.returncode == 0, res.stderr[-1500:]
    assert "glance_visual" in res.stdout and f"plan: {cache}" in res.stdout
    assert list((cache / "avgn-edge" / "plans").glob("*-fp32.json"))
    for args, said in ((("--reps", "0"), "--reps and --max-batch must be at least 1"),
                       (("--precision", "fp16"), "has no fp16 variant")):
        res = run(*args)
        assert res.returncode != 0 and said in res.stderr and "Traceback" not in res.stderr, res.stderr
    # a cache folder that cannot be made: said in one line before anything is measured
    blocker = cache.parent / "a-file"
    blocker.write_text("")
    res = subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", "tune", "--bundle", str(tiny_bundle.root)],
                         capture_output=True, text=True, env={**env, "XDG_CACHE_HOME": str(blocker)}, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "tune fp32" not in res.stderr
    assert res.stderr.splitlines()[0].startswith(f"error: cannot write tuning plans to {blocker}/avgn-edge/plans")


@pytest.mark.parametrize("ort_entry", [True, False], ids=["ort-graph", "tensorrt-graph"])
def test_tune_sets_up_each_session_as_the_backend_does(tiny_bundle, monkeypatch, ort_entry):
    """INT8: ONNX Runtime's own graph runs optimised, TensorRT's Q/DQ graph not (a plan measured on
    unoptimised INT8 sessions chose one thread where the backend's optimised ones wanted all cores)."""
    import copy

    from avgn_edge.bench import tune as tuning
    b = copy.deepcopy(tiny_bundle)
    files = dict(b.variants["fp32"]["files"])
    b.variants["int8"] = {"files": files, **({"ort": {"files": files}} if ort_entry else {})}
    seen = []
    monkeypatch.setattr(tuning, "open_session", lambda path, st: seen.append(st) or path)
    monkeypatch.setattr(tuning, "interleaved", lambda calls, n, warmup=0: {k: [1.0] for k in calls})
    monkeypatch.setattr(tuning, "time_calls", lambda fn, n, warmup=0: [1.0])
    feed = {"x": np.zeros((1, 2), np.float32)}
    tuning.measure_stage(b, "head", "int8", [feed], reps=1, max_batch=2)
    assert seen and all(st["optimize"] is ort_entry for st in seen)
