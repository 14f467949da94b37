"""The command line, end to end, as a user runs it (subprocesses of the installed entry point)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avgn_edge.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def test_help_everywhere_and_the_runtime_never_imports_torch():
    """Every command's --help works, and the online modules import with torch unavailable."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "import avgn_edge.runtime.recognizer, avgn_edge.runtime.ort, avgn_edge.runtime.trt, avgn_edge.bundle\n"
        "import avgn_edge.io, avgn_edge.io.video, avgn_edge.io.audio, avgn_edge.io.synthstream\n"
        "import avgn_edge.live.loop, avgn_edge.live.session, avgn_edge.kernels.reference, avgn_edge.trt.build\n"
        "import avgn_edge.events, avgn_edge.events.evaluate, avgn_edge.data.stream\n"
        "from avgn_edge.cli.main import main\n"
        f"for name in {[n for n, _ in COMMANDS]!r}:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit as e:\n        assert e.code == 0, name\n"
        "from avgn_edge.runtime.recognizer import Recognizer\n"
        "r = Recognizer.load('synth', backend='ort')\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


@pytest.mark.slow
def test_user_errors_are_one_line_and_exit_2(tmp_path):
    for args, text in [(["run", tmp_path / "missing.mp4"], "no such file"),
                       (["eval", "--checkpoint", tmp_path / "nope.safetensors"], "checkpoint not found"),
                       (["train", "--preset", "huge", "--out", tmp_path], "unknown preset"),
                       (["build-engines", tmp_path, "--precision", "fp16", "--dry-run"], "no model bundle"),
                       (["live", "--camera", "ftp://x", "--headless"], "ftp://x"),
                       (["run", ROOT / "README.md", "--backend", "trt"], "TensorRT is not installed"),
                       (["quantize", "synth", "--precision", "int8"], "read-only"),
                       (["demo", "--duration", "0"], "--duration must be positive"),
                       (["live", "--camera", "synth://", "--headless", "--threshold", "1.5"],
                        "onset threshold must be in [0, 1]"),
                       (["demo", "--label-threshold", "bell-dots=0.5"], "unknown label(s) in a label threshold"),
                       (["demo", "--label-threshold", "bell-checker=high"], "threshold of bell-checker"),
                       (["live", "--camera", "synth://", "--headless", "--hold", "-2"], "hold must be >= 0"),
                       (["eval", "--stream", "--hours", "0"], "--hours must be positive"),
                       (["run", ROOT / "README.md", "--events", "--label-threshold", "nope=0.5"],
                        "unknown label(s) in a label threshold"),
                       (["eval", "--stream", "--quiet", "1.0"], "quiet must be in [0, 1)"),
                       (["train", "--data", "synth:noise=0.7-0.2", "--out", tmp_path], "noise must be in [0, 1]"),
                       (["quantize", tmp_path, "--precision", "fp16", "--backend", "ort"], "does not apply"),
                       (["bench", "--preset", "huge"], "unknown preset")]:
        res = cli(*args, timeout=120)
        assert res.returncode == 2, (args, res.stderr[-800:])
        errors = [l for l in res.stderr.splitlines() if l.startswith("error:")]
        assert "Traceback" not in res.stderr and len(errors) == 1, (args, res.stderr[-800:])
        assert text in errors[0]


def test_synth_then_run(tmp_path):
    out = tmp_path / "clips"
    res = cli("synth", "--out", out, "--clips", "3", "--seed", "5")
    assert res.returncode == 0, res.stderr
    entries = json.loads((out / "labels.json").read_text())
    assert [e["file"] for e in entries] == ["clip_00000.mp4", "clip_00001.mp4", "clip_00002.mp4"]
    assert {"file", "label", "event_snippets", "boxes"} <= set(entries[0])
    (out / "broken.mp4").write_bytes(b"not a video" * 50)
    res = cli("run", out, "--json", "--backend", "ort")
    lines = [json.loads(l) for l in res.stdout.splitlines()]
    good = [l for l in lines if "top" in l]
    assert len(good) == 3 and res.returncode == 1                 # one file could not be decoded
    assert all(set(l["top"][0]) == {"label", "score"} for l in good)
    assert [l for l in lines if "error" in l][0]["path"].endswith("broken.mp4")
    assert sum(l["top"][0]["label"] == e["label"] for l, e in zip(good, entries)) >= 2
    res = cli("run", out, "--json", "--backend", "ort", "--events")       # each file's own event tracker
    lines = [json.loads(l) for l in res.stdout.splitlines()]
    for clip in (l for l in lines if "top" in l):
        events = [l for l in lines if "event" in l and l["path"] == clip["path"]]
        top = clip["top"][0]
        fires = top["score"] >= 0.5 and top["label"] != "background"
        assert [e["event"] for e in events] == (["new", "end"] if fires else []), res.stdout
        assert all(e["label"] == top["label"] and e["camera"] == clip["path"] for e in events)


def test_eval_json(tiny_run):
    res = cli("eval", "--checkpoint", tiny_run, "--data", "synth:seed=1000,clips=16", "--json")
    assert res.returncode == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert {"top1", "map", "gflops_per_clip", "saliency_precision_at_k", "patch_hit_rate", "baselines"} <= set(r)
    assert set(r["baselines"]) == {"dense", "glance_only", "audio_only", "random_frames", "random_patches"}
    assert all({"top1", "gflops_per_clip"} <= set(b) for b in r["baselines"].values())


def test_eval_stream_json(tiny_run, tiny_export):
    """Event-level evaluation on a simulated clock: the deployed pipeline and the PyTorch baselines."""
    res = cli("eval", "--stream", "--seed", "5", "--hours", "0.02", "--quiet", "0.7", "--json", "--bundle", tiny_export.root,
              "--checkpoint", tiny_run, "--backend", "ort", "--threshold", "0.3", "--hold", "0.5")
    assert res.returncode == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    from avgn_edge.events import METRIC_KEYS
    assert set(METRIC_KEYS) <= set(r) and r["snippets"] == 288 and r["decisions"] == (288 - 4) // 2 + 1
    assert r["events"] >= 10 and r["hours"] == pytest.approx(0.02, abs=1e-3)
    assert r["stream"].startswith("synth://?seed=5&quiet=0.7") and r["events_settings"]["hold_s"] == 0.5
    assert r["wall_s"] < 72                                     # faster than real time (72 s of stream)
    assert set(r["baselines"]) == {"avgn_pytorch", "dense", "glance_only", "audio_only", "random_frames",
                                   "random_patches"}
    for m in r["baselines"].values():
        assert m["events"] == r["events"] and m["decisions"] == r["decisions"]
    # the deployed pipeline and the PyTorch model make the same events
    assert r["baselines"]["avgn_pytorch"]["detections"] == r["detections"]


@pytest.mark.slow
def test_shipped_model_export_quantize_and_engine_plan(tmp_path):
    """export, quantize and build-engines --dry-run on the shipped synth model."""
    b = tmp_path / "bundle"
    res = cli("export", "synth", "--out", b, "--parity-data", "synth:seed=1000,clips=4")
    assert res.returncode == 0, res.stderr[-1500:]
    assert "top-1 agreement 1.000" in res.stdout
    res = cli("quantize", b, "--precision", "int8", "--calib", "synth:seed=2000,clips=8", "--eval-clips", "16")
    assert res.returncode == 0, res.stderr[-1500:]
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["variants"]["int8"]["accuracy"]["clips"] == 16
    res = cli("build-engines", b, "--precision", "int8", "--dry-run", "--out", tmp_path / "engines")
    assert res.returncode == 0, res.stderr[-1500:]
    for stage in ("glance_visual", "glance_audio", "decide", "focus_local", "head"):
        assert stage in res.stdout
    res = cli("build-engines", "synth", "--precision", "fp16", "--out", tmp_path / "engines")
    assert res.returncode == 2 and "JetPack" in res.stderr


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """The README's main command, in real time on the CPU, against the stream's ground truth."""
    res = cli("demo", "--out", tmp_path, "--duration", "30", "--backend", "ort")
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["events"] >= 3
    assert s["event_recall"] >= 0.8 and s["event_precision"] >= 0.8, s
    assert s["false_alarms_per_hour"] <= 120 and s["onset_latency_p95_s"] <= 2.0, s     # <= 1 false alarm in 30 s
    assert 3.6 <= s["snippets_per_s"] <= 4.2             # the snippet clock runs at 4 Hz, in real time
    assert {"dropped", "latency_p95_ms", "label_accuracy", "onsets"} <= set(s)
    lines = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sum(l["type"] == "decision" for l in lines) == s["decisions"]
    onsets = [l for l in lines if l["type"] == "onset"]
    assert len(onsets) == s["onsets"] >= s["detections"] >= 3
    assert {l["id"] for l in lines if l["type"] == "offset"} == {l["id"] for l in onsets}   # every event ended
    import av
    with av.open(str(tmp_path / "annotated.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) > 100
