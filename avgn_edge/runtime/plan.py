"""Per-stage ONNX Runtime threads and call size, measured on this machine (``avgn-edge tune``).

Which thread count and which batch give a stage its best throughput depends on the CPU, its
cache and ONNX Runtime's kernels, not only on the stage's work: paper's FP32 glance ran faster as
16 calls of one snippet than as one call of 16 (its activations leave the cache), synth's gain
from the whole batch. ``avgn-edge tune`` times each stage at each thread count and batch and
writes a plan; ``OrtBackend`` follows it where one exists for this machine and these graphs,
else the work-based rules of ort.py. A plan lives in the user's cache, not in the bundle (a
bundle moves between machines; a plan must not): keyed by the graphs' hashes, tagged with the
machine it was measured on, and a plan from another machine is ignored with one log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from pathlib import Path

from ..cachedir import user_cache
from ..errors import InputError

log = logging.getLogger(__name__)
FORMAT = 1


def machine() -> dict:
    """What a plan's timings depend on: the CPU, the cores this process may use, ONNX Runtime."""
    import onnxruntime as ort
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")),
               platform.processor() or platform.machine())
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "onnxruntime": ort.__version__}


def graphs_key(bundle, precision: str, ort: bool = True) -> str:
    """The hash of the stage graphs ONNX Runtime runs for ``precision`` (from the manifest's hashes;
    ``ort=False``: TensorRT's graphs, which OrtBackend runs with ``tensorrt_graph=True``)."""
    from ..bundle import STAGES
    root = bundle.root
    digests = [bundle.files.get(str(bundle.stage_path(s, precision, ort=ort).relative_to(root)), "") for s in STAGES]
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def plan_dir() -> Path:
    return user_cache("plans")


def writable_plan_dir() -> Path:
    """The plans' folder, made; InputError (one line) where it cannot be (a read-only home)."""
    d = plan_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write tuning plans to {d} ({exc.strerror})",
                         hint="set XDG_CACHE_HOME to a writable folder") from None
    return d


def plan_path(bundle, precision: str, ort: bool = True) -> Path:
    return plan_dir() / f"{graphs_key(bundle, precision, ort)}-{precision}.json"


def save_plan(bundle, precision: str, stages: dict[str, dict], measured: dict) -> Path:
    """``stages``: {stage: {"threads": n (0 = all cores), "max_call": items}}; ``measured``: the timings
    (of ONNX Runtime's own graphs)."""
    writable_plan_dir()
    path = plan_path(bundle, precision)
    doc = {"format": FORMAT, "machine": machine(), "bundle": str(bundle.root), "precision": precision,
           "stages": stages, "measured": measured}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_plan(bundle, precision: str, ort: bool = True) -> dict[str, dict] | None:
    """This machine's plan for these graphs ({stage: {"threads", "max_call"}}), or None."""
    path = plan_path(bundle, precision, ort)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ort: ignoring the tuning plan %s (%s): run avgn-edge tune again", path, exc)
        return None
    if doc.get("format") != FORMAT or not isinstance(doc.get("stages"), dict):
        log.warning("ort: ignoring the tuning plan %s (format %r): run avgn-edge tune again", path, doc.get("format"))
        return None
    here = machine()
    if doc.get("machine") != here:
        log.info("ort: the tuning plan %s was measured on another machine (%s, %s cores, onnxruntime %s): "
                 "not used", path, *(doc.get("machine", {}).get(k) for k in ("cpu", "cores", "onnxruntime")))
        return None
    return doc["stages"]
