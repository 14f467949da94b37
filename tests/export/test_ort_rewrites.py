"""ONNX Runtime's rewritten glance_audio graph (the folded STFT): same numbers as the exported graph
on real-ish audio, refused where the window is not symmetric, recorded in the manifest, used by
OrtBackend and never by TensorRT; a wrong rewrite is not chosen; the shipped bundle's is right."""

import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from avgn_edge.bundle import load_bundle  # noqa: E402
from avgn_edge.export import ort_rewrites  # noqa: E402
from avgn_edge.export.logmel_fold import FoldError, fold_log_mel, folded_nodes, replace_front_end  # noqa: E402
from avgn_edge.export.ort_rewrites import MAX_ERROR, add_ort_rewrites, graph_error, probe_waves  # noqa: E402
from avgn_edge.runtime.ort import open_session, session_settings  # noqa: E402

SYNTH = load_bundle("synth", verify=False)


def _graph_outputs(model, wave):
    sess = open_session(model.SerializeToString(), session_settings("glance_audio", "fp32", threads=1))
    return sess.run(None, {"wave": wave})[0]


def _waves(bundle, n):
    cfg = bundle.config
    return probe_waves(cfg.audio_samples, cfg.sample_rate, n)


@pytest.mark.parametrize("gain", [1.0, 30.0, 1e-3])          # as recorded, very loud, very quiet
@pytest.mark.parametrize("which", ["tiny", "synth"])
def test_the_folded_graph_computes_what_the_exported_one_does(tiny_bundle, which, gain):
    bundle = tiny_bundle if which == "tiny" else SYNTH
    exported = onnx.load(str(bundle.stage_path("glance_audio", "fp32")))
    folded = fold_log_mel(exported)
    assert not any(n.op_type == "Conv" and "frontend" in n.name for n in folded.graph.node)
    for n in (1, bundle.config.num_snippets):                    # a stream's snippet and a clip's batch
        wave = _waves(bundle, n) * np.float32(gain)
        a, b = _graph_outputs(exported, wave), _graph_outputs(folded, wave)
        # float32 sums in another order: measured <= 2.1e-5 of the output's range (MAX_ERROR's comment)
        assert np.abs(a - b).max() <= MAX_ERROR * np.abs(a).max(), (n, gain)


def test_a_window_without_the_symmetry_is_refused(tiny_bundle):
    model = onnx.load(str(tiny_bundle.stage_path("glance_audio", "fp32")))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    tensor = ([i for i in model.graph.initializer if i.name == conv.input[1]]
                  + [n.attribute[0].t for n in model.graph.node if n.output[0] == conv.input[1]])[0]
    dft = onnx.numpy_helper.to_array(tensor)
    for bad, message in ((dft * np.linspace(0.5, 1.5, dft.shape[-1], dtype=np.float32), "not symmetric"),
                         (dft + dft[:, :, 200:201], "start at zero")):      # symmetric, but w[0] != 0
        tensor.CopyFrom(onnx.numpy_helper.from_array(bad.astype(np.float32), tensor.name))
        with pytest.raises(FoldError, match=message):
            fold_log_mel(model)


def test_the_rewrite_is_recorded_and_only_onnx_runtime_runs_it(tiny_bundle, tmp_path, monkeypatch):
    root = tmp_path / "b"
    shutil.copytree(tiny_bundle.root, root)
    b = load_bundle(root)
    for _ in range(2):                                   # a second run replaces the first, nothing left over
        add_ort_rewrites(b, budget_s=0.3)
        b.save()
    b = load_bundle(root)                                # hashes verified
    record = b.variants["fp32"]["ort"]["rewrites"]["glance_audio"]
    assert record["error"] <= MAX_ERROR and set(record["ms"]) == {"from", "rewrite"}
    assert set(record["ms"]["from"]) == {"1", str(b.config.num_snippets)}
    # the timing decides; on any machine the folded graph has lost it would stay unchosen
    if not record["chosen"]:
        pytest.skip(f"the folded graph was not faster here: {record['ms']}")
    assert b.stage_path("glance_audio", "fp32", ort=True) == root / "folded" / "fp32.glance_audio.onnx"
    assert b.stage_path("glance_audio", "fp32") == root / "fp32" / "glance_audio.onnx"     # TensorRT's
    assert sorted(p.name for p in (root / "folded").iterdir()) == ["fp32.glance_audio.onnx"]
    from avgn_edge.runtime import ort
    opened = []
    monkeypatch.setattr(ort, "open_session", lambda path, *a, **k: opened.append(str(path)) or open_session(path, *a, **k))
    ort.OrtBackend(b)
    ort.OrtBackend(b, tensorrt_graph=True)
    assert [p for p in opened if "glance_audio" in p] == [str(root / "folded" / "fp32.glance_audio.onnx"),
                                                         str(root / "fp32" / "glance_audio.onnx")]


def test_a_wrong_rewrite_is_not_chosen(tiny_bundle, tmp_path, monkeypatch):
    root = tmp_path / "b"
    shutil.copytree(tiny_bundle.root, root)
    b = load_bundle(root)
    # the right structure with the mel filters one bin off: fast, and wrong
    wrong = lambda m: replace_front_end(m, lambda w, o, hop, s, dft, mel: folded_nodes(w, o, hop, s, dft, np.roll(mel, 1, 1)))
    monkeypatch.setitem(ort_rewrites.REWRITES, "glance_audio", ("folded-stft", wrong))
    record = add_ort_rewrites(b, budget_s=0.2)["fp32"]["glance_audio"]
    assert record["error"] > MAX_ERROR and not record["chosen"]
    assert b.variants["fp32"]["ort"]["files"] == b.variants["fp32"]["files"]
    assert not list((root / "folded").glob("*.onnx"))


def test_the_folded_form_of_an_int8_graph(tiny_bundle, tmp_path):
    """ONNX Runtime's INT8 graph keeps the front end in FP32 (int8_ort.py), so its QDQ form folds too."""
    from avgn_edge.precision.int8_ort import quantize_int8_ort
    src = tiny_bundle.stage_path("glance_audio", "fp32")
    feeds = [{"wave": w[None]} for w in _waves(tiny_bundle, 8)]
    qdq = quantize_int8_ort(src, tmp_path / "q.onnx", feeds, "qdq")
    onnx.save(fold_log_mel(onnx.load(str(qdq))), str(tmp_path / "qf.onnx"))
    assert graph_error(qdq, tmp_path / "qf.onnx", [{"wave": _waves(tiny_bundle, 4)}]) <= MAX_ERROR


@pytest.mark.parametrize("name", ["synth", "home"])
def test_the_shipped_bundles_run_correct_rewrites(name):
    """Every rewrite a shipped bundle's manifest chose: its file is what ONNX Runtime runs, and its
    outputs are the graph it rewrites' (fails if a variant is chosen but wrong)."""
    shipped = load_bundle(name)
    chosen = 0
    for precision, variant in shipped.variants.items():
        for stage, record in variant.get("ort", {}).get("rewrites", {}).items():
            if not record["chosen"]:
                continue
            chosen += 1
            assert shipped.stage_path(stage, precision, ort=True) == shipped.root / record["file"]
            waves = _waves(shipped, shipped.config.num_snippets)
            feeds = [{"wave": waves}, {"wave": waves[:1] * np.float32(20)}, {"wave": waves[1:2]}]
            assert graph_error(shipped.root / record["from"], shipped.root / record["file"], feeds) <= MAX_ERROR
    assert chosen >= 1                                   # glance_audio, FP32 and INT8


@pytest.mark.parametrize("name", ["synth", "home"])
def test_the_shipped_rewrites_on_real_recordings(name):
    """The shipped folded front ends against the exported ones on recordings we did not make: the
    freedesktop sound theme (Debian's sound-theme-freedesktop: a bell, a voice, an alarm clock, a
    camera shutter), decoded by FFmpeg (PyAV) and resampled to the model's rate, cut into windows."""
    from avgn_edge.data.realset import catalog
    from avgn_edge.data.realset.packages import fetch
    from avgn_edge.errors import SourceError
    from avgn_edge.media import read_audio
    try:
        root = fetch("sound-theme-freedesktop", catalog.PACKAGES["sound-theme-freedesktop"][0], "deb")
    except SourceError as exc:
        pytest.skip(f"package registry not reachable: {exc}")
    shipped = load_bundle(name)
    cfg = shipped.config
    stereo = root / "usr/share/sounds/freedesktop/stereo"
    windows = []
    for sound in ("bell.oga", "audio-channel-front-left.oga", "alarm-clock-elapsed.oga", "camera-shutter.oga"):
        x, _ = read_audio(stereo / sound, cfg.sample_rate)
        x = np.pad(x, (0, max(0, cfg.audio_samples - len(x))))
        windows += [x[i:i + cfg.audio_samples] for i in range(0, len(x) - cfg.audio_samples + 1, cfg.audio_samples)][:4]
    waves = np.stack(windows).astype(np.float32)
    assert len(waves) >= 4 and np.abs(waves).max() > 0.1             # real sound, not silence
    record = shipped.variants["fp32"]["ort"]["rewrites"]["glance_audio"]
    assert record["chosen"]
    assert graph_error(shipped.root / record["from"], shipped.root / record["file"],
                       [{"wave": waves[i:i + 1]} for i in range(len(waves))] + [{"wave": waves}]) <= MAX_ERROR
