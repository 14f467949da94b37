"""Shared fixtures: the tiny model's checked-in bundle; one tiny model trained once per session (only
for the tests that need PyTorch) and the bundle exported from it."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


TRAINING_FIXTURES = {"tiny_run", "home_run", "base_run"}      # each trains a model first


def pytest_collection_modifyitems(config, items):
    """A test that needs a model trained first (``tiny_run``, the home model's ``home_run``, the few-shot
    ``base_run``) is slow: -m "not slow" trains nothing."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_cfg():
    from avgn_edge.config import get_preset
    return get_preset("tiny")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_cfg):
    """A tiny AVGN trained end to end with the real recipe (about half a minute; minutes on a busy
    machine). ``AVGN_TEST_TINY_RUN=DIR`` reuses one trained before (a developer's shortcut)."""
    pytest.importorskip("torch")
    if os.environ.get("AVGN_TEST_TINY_RUN"):
        from pathlib import Path
        return Path(os.environ["AVGN_TEST_TINY_RUN"])
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.train.loop import train
    from avgn_edge.train.recipe import RECIPES
    out = tmp_path_factory.mktemp("tiny_run")
    # background=0.08, about 1/13: with the default 0.25 it is the majority class, and the tiny
    # recipe's 140 steps end at "always background" (measured: top-1 = the background share)
    ds = open_dataset("synth:seed=0,clips=4000,background=0.08", tiny_cfg)
    path = train(tiny_cfg, ds, out, RECIPES["tiny"], seed=0, progress=False, workers=0)
    return path


TINY_BUNDLE = Path(__file__).resolve().parent / "data" / "tiny_bundle"


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """The tiny model's bundle, checked in (tests/data/tiny_bundle, made by scripts/make-tiny-bundle.py
    exactly as ``tiny_export`` makes one): no torch, no training. A copy, so a test may write beside it."""
    from avgn_edge.bundle import load_bundle
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    shutil.copytree(TINY_BUNDLE, out)
    return load_bundle(out)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_run):
    """A bundle exported from this session's ``tiny_run`` (tests of export, and of agreement with PyTorch)."""
    from avgn_edge.export.onnx_export import export_bundle
    out = tmp_path_factory.mktemp("bundles") / "tiny-export"
    return export_bundle(tiny_run, out, parity_data="synth:seed=1000,clips=4")


# ---------------------------------------------------------------------------------------------
# GPU tests: on the real GPU when there is one, else on avgn-edge's emulated GPU. Only tests
# marked ``gpu`` (or modules whose pytestmark is gpu) see the emulator; every other test runs
# against whatever the machine really has, so ``--backend auto`` never silently emulates.

def real_gpu() -> bool:
    """A real CUDA device answers (cached). False when the emulator was asked for with AVGN_EMULATE_GPU."""
    if not hasattr(real_gpu, "answer"):
        from avgn_edge import emulator
        real_gpu.answer = False
        if not emulator.requested():
            try:
                from cuda.bindings import driver
                ok = int(driver.cuInit(0)[0]) == 0
                err, n = driver.cuDeviceGetCount() if ok else (1, 0)
                real_gpu.answer = ok and int(err) == 0 and n > 0
            except Exception:                  # no cuda-bindings, no libcuda, no device
                pass
    return real_gpu.answer


@contextlib.contextmanager
def gpu_device():
    from avgn_edge import emulator
    if real_gpu():
        yield
        return
    with emulator.emulated():                     # also under $AVGN_EMULATE_GPU: importing avgn_edge starts nothing
        yield


def _is_gpu_module(module) -> bool:
    marks = getattr(module, "pytestmark", [])
    return any(m.name == "gpu" for m in (marks if isinstance(marks, list) else [marks]))


@pytest.fixture(scope="module", autouse=True)
def _gpu_module(request):
    if not _is_gpu_module(request.module):
        yield
        return
    with gpu_device():
        yield


@pytest.fixture(autouse=True)
def _gpu_test(request):
    if request.node.get_closest_marker("gpu") is None:
        yield
        return
    from gpu_census import checked                  # leaks fail the test (emulated GPU; tests/gpu_census.py)
    with gpu_device(), checked():
        yield


@pytest.fixture
def emulated_gpu():
    """The emulated GPU (its tensorrt module), for tests of the emulator itself, whatever the machine has."""
    from avgn_edge import emulator
    with emulator.emulated() as trt:
        yield trt
