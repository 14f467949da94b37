"""The media corpus (scripts/media-corpus: real videos from Debian packages and awkward variants
made by ffmpeg) through every command: each file gives a decision or a one-line reason, as its
manifest entry expects; no traceback, no stalled stream, a bad file costs only its own record.

The corpus is built once into ``AVGN_MEDIA_CORPUS`` (default ~/.cache/avgn-edge/media-corpus);
CI caches that folder. Marked slow: ``-m 'not slow'`` skips it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "avgn_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def corpus() -> dict:
    for tool in ("apt-get", "dpkg-deb", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"building the media corpus needs {tool}")
    out = os.environ.get("AVGN_MEDIA_CORPUS", os.path.expanduser("~/.cache/avgn-edge/media-corpus"))
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "media-corpus"), "--out", out], capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    c = json.loads((Path(out) / "corpus.json").read_text())
    assert len(c["files"]) >= 30 and not any("Traceback" in s["why"] for s in c["skipped"])
    return {Path(f["file"]).name: f for f in c["files"]} | {"_dir": Path(out) / "files"}


def files_of(corpus):
    return {k: v for k, v in corpus.items() if not k.startswith("_")}


def judge(corpus, outcomes: dict, what: str):
    """``outcomes``: file name -> None (classified) or the one-line reason it was refused."""
    files = files_of(corpus)
    assert set(outcomes) == set(files), (what, sorted(set(files) ^ set(outcomes)))
    wrong = []
    for name, reason in outcomes.items():
        e = files[name]
        if e["expect"] == "classified" and reason is not None:
            wrong.append(f"{name}: refused ({reason})")
        elif e["expect"] == "refused":
            if reason is None:
                wrong.append(f"{name}: classified, expected refused")
            elif "\n" in reason or not re.search(e["reason"], reason):
                wrong.append(f"{name}: reason {reason!r} does not match {e['reason']!r}")
    assert not wrong, f"{what}:\n" + "\n".join(wrong)


def test_run_local_and_ray(corpus, tmp_path):
    res = cli("run", corpus["_dir"], "--json", "--backend", "ort", "--out", tmp_path / "local.jsonl")
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    records = [json.loads(line) for line in res.stdout.splitlines()]
    judge(corpus, {Path(r["path"]).name: r.get("error") for r in records}, "run")
    assert res.returncode == 1                   # some files are refused: the exit status says so
    pytest.importorskip("ray")
    res = cli("run", corpus["_dir"], "--json", "--backend", "ort", "--ray", "--actors", "2", "--batch", "2")
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    ray = {Path(r["path"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    judge(corpus, {k: r.get("error") for k, r in ray.items()}, "run --ray")
    for r in records:                            # the same decisions as the local run
        other = ray[Path(r["path"]).name]
        assert ("top" in r) == ("top" in other)
        if "top" in r:
            assert r["top"][0]["label"] == other["top"][0]["label"]


@pytest.fixture(scope="module")
def labelled(corpus, tmp_path_factory):
    """The corpus as a class-folder dataset of two of the synth model's labels (links)."""
    root = tmp_path_factory.mktemp("labelled")
    for i, name in enumerate(sorted(files_of(corpus))):
        cls = root / ("background" if i % 2 else "bell-checker")
        cls.mkdir(exist_ok=True)
        (cls / name).symlink_to(corpus["_dir"] / name)
    return root


def refused_count(corpus) -> int:
    return sum(e["expect"] == "refused" for e in files_of(corpus).values())


def test_cache_eval_and_train_on_a_folder_of_it(corpus, labelled, tmp_path):
    pytest.importorskip("torch")
    res = cli("cache", "--data", labelled, "--cache", tmp_path / "cache", "--preset", "tiny", "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["fill"]["clips"] == len(files_of(corpus)) and report["fill"]["undecodable"] == refused_count(corpus)
    skipped = {n for line in res.stderr.splitlines() if "skipping" in line for n in files_of(corpus) if n in line}
    assert skipped == {n for n, e in files_of(corpus).items() if e["expect"] == "refused"}

    res = cli("eval", "--data", labelled, "--no-baselines", "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert json.loads(res.stdout)["clips"] > 0

    res = cli("train", "--preset", "tiny", "--data", labelled, "--out", tmp_path / "run", "--steps", "0.02",
              "--workers", "0", "--cache", tmp_path / "cache")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_serve_every_file_as_a_camera(corpus):
    """All files at once as file-source cameras of one service: the good ones decide, the bad
    ones say why in their status, none stalls the others."""
    pytest.importorskip("aiohttp")
    sys.path.insert(0, str(Path(__file__).parent))
    from serve_rigs import http, running_service
    files = files_of(corpus)
    names = {f"f{i}": n for i, n in enumerate(sorted(files))}
    config = {"model": {"bundle": "synth", "backend": "ort"},
              "cameras": {k: {"source": str(corpus["_dir"] / n), "loop": True, "jsonl": {"enabled": False}}
                          for k, n in names.items()}}
    with running_service(config) as (svc, url):
        end, seen = time.monotonic() + 90, {}
        while time.monotonic() < end:
            _, streams = http("GET", url + "/api/streams")
            for s in streams:
                n = names[s["name"]]
                if s["counters"]["decisions"] > 0:
                    seen[n] = None
                elif s["status"] == "offline" and s["reason"]:
                    seen[n] = s["reason"]
            if len(seen) == len(files):
                break
            time.sleep(1)
    missing = sorted(set(files) - set(seen))
    assert not missing, f"no decision and no reason within 90 s: {missing}"
    judge(corpus, seen, "serve")
