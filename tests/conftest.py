"""Shared fixtures: one tiny model trained once per session, and its bundle."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


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
    ds = open_dataset("synth:seed=0,clips=4000", tiny_cfg)
    path = train(tiny_cfg, ds, out, RECIPES["tiny"], seed=0, progress=False, workers=0)
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_run):
    from avgn_edge.export.onnx_export import export_bundle
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    return export_bundle(tiny_run, out, parity_data="synth:seed=1000,clips=4")
