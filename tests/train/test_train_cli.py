"""`avgn-edge train` and `avgn-edge cache` on real video folders, as a user runs them: a run
through the snippet cache with a held-out validation split, and every bad input ending in
one line, exit code 2 and no run folder."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from avgn_edge.data.synth import LABELS, SynthSpec, clip_video  # noqa: E402
from avgn_edge.media import write_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--preset", "tiny", "--steps", "0.05", "--batch-size", "4", "--workers", "0", "--device", "cpu"]


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "avgn_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"})


@pytest.fixture(scope="module")
def videos(tmp_path_factory, tiny_cfg):
    """Three classes of four clips (one without audio), plus an undecodable file."""
    root = tmp_path_factory.mktemp("videos")
    spec = SynthSpec.for_model(tiny_cfg, seed=11)
    for c, name in enumerate(["background", LABELS[0], LABELS[5]]):
        (root / name).mkdir()
        for j in range(4):
            frames, audio = clip_video(spec, 4 * c + j)
            write_video(root / name / f"{j}.mp4", frames, spec.fps, None if (c, j) == (2, 3) else audio,
                        spec.sample_rate)
    (root / LABELS[0] / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    return root


@pytest.mark.slow
def test_train_a_folder_through_the_cache_with_validation(videos, tmp_path):
    out = tmp_path / "run"
    res = cli("train", *TINY, "--data", videos, "--cache", tmp_path / "cache", "--val-fraction", "0.25",
              "--val-every", "2", "--out", out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == str(out / "best.safetensors")
    warn = [line for line in res.stderr.splitlines() if "cannot be decoded (skipped)" in line]
    assert len(warn) == 1 and "1 of 13 videos" in warn[0] and "1 have no audio track" in warn[0]
    for name in ("model.safetensors", "best.safetensors", "train_state.pt", "history.jsonl", "validation.jsonl",
                 "curves.png"):
        assert (out / name).is_file(), name
    val = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert {r["clips"] for r in val} == {3}                                    # one clip of each class held out
    ev = cli("eval", "--checkpoint", out, "--data", videos, "--json", "--no-baselines")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout)["clips"] == 12                               # the broken file counts nowhere
    again = cli("cache", "--data", videos, "--cache", tmp_path / "cache", "--preset", "tiny", "--workers", "0", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    r = json.loads(again.stdout)
    assert r["fill"]["decoded"] == 0 and r["fill"]["undecodable"] == 1               # filled by the training run
    assert r["files_clips_per_s"] > 0 and r["cache_clips_per_s"] > 0


@pytest.mark.slow
def test_bad_training_inputs_are_one_line_and_write_nothing(videos, tmp_path, capsys):
    """In-process (the same main() the entry point runs), to spare a torch import per case."""
    from avgn_edge.cli.main import main
    one = tmp_path / "one"
    shutil.copytree(videos / "background", one / "background")
    broken = tmp_path / "broken"
    for c in ("a", "b"):
        (broken / c).mkdir(parents=True)
        for j in range(3):
            (broken / c / f"{j}.mp4").write_bytes(b"not a video" * 50)
    lst = tmp_path / "list.csv"
    lst.write_text(f"path,label\n{videos}/background/0.mp4,background\nnope.mp4,{LABELS[0]}\n")
    other = tmp_path / "other"
    shutil.copytree(videos / "background", other / "thunder")
    shutil.copytree(videos / LABELS[0], other / LABELS[0])
    cases = [
        (["--data", one], "has one class (background): training needs at least two"),
        (["--data", broken, "--cache", tmp_path / "c1"], "none of the 6 videos can be decoded"),
        (["--data", lst], "names 1 file(s) that do not exist: " + str(tmp_path / "nope.mp4")),
        (["--data", videos, "--val", other], "label(s) the model does not know: thunder"),
        (["--data", "synth:seed=0,clips=900000", "--batch-size", "400000"], "does not fit in memory on cpu"),
        (["--data", videos, "--val-fraction", "0.2", "--val", other], "give --val or --val-fraction"),
        (["--data", videos, "--device", "cuda:0"], "--device cuda:0"),
        (["--data", videos, "--augment", "spin"], "unknown augmentation 'spin'"),
    ]
    for args, text in cases:
        out = tmp_path / "run"
        code = main(["train", *TINY, *map(str, args), "--out", str(out)])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1, (args, err[-1500:])
        assert text in errors[0], (text, errors[0])
        assert not out.exists(), args
