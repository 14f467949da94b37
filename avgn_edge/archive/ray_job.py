"""``avgn-edge run DIR --ray [ADDRESS]``: Ray Data over a video archive, one model per actor.

    files (this process) -> ray.data.from_items -> map_batches(ClipClassifier, actors) -> records
                                                    decode + classify, one Recognizer each   -> this process
                                                                                               writes JSON lines

The driver lists the files and skips those already in ``--out`` (``--resume``); Ray Data splits
the rest into blocks and streams them through a pool of actors, each holding one Recognizer
(one model: ONNX Runtime sessions, or TensorRT engines on a GPU node), which decodes a file and
classifies it exactly as the local ``run`` does (``archive.records.file_records``). The records
stream back as they are made and are appended and flushed file by file, so a job killed
mid-way loses only the files in flight. A file that cannot be decoded is a failed record,
never a failed job.

Placement: on a cluster with GPUs each actor takes ``gpus_per_actor`` (default 1) and there is
one actor per GPU; otherwise each takes ``cpus_per_actor`` CPUs (ONNX Runtime then uses that
many threads) and there is one per CPU group. The files, the bundle and the TensorRT engines
must be readable at the same paths on every node (shared storage), and avgn-edge installed there.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from ..deps import require
from .records import file_records

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE = 512 * 2**20         # a local instance: records are small, the default (30% of RAM) is not


class ClipClassifier:
    """A Ray Data actor: one Recognizer; a batch of paths in, one row of records per file out."""

    def __init__(self, bundle: str, backend: str, precision: str, options: dict, top: int, events=None,
                 cpu_threads: int | None = None):
        from ..runtime.backend import trt_available
        from ..deps import start_requested
        from ..runtime.recognizer import Recognizer
        start_requested()          # a worker process: what its environment asks for (AVGN_EMULATE_GPU)
        if cpu_threads and (backend == "ort" or (backend == "auto" and not trt_available()[0])):
            options = {**options, "threads": cpu_threads}          # ONNX Runtime: the actor's CPUs, no more
        self.rec = Recognizer.load(bundle, backend=backend, precision=precision, **options)
        self.top, self.events = top, events

    def __call__(self, batch: dict) -> dict:
        import json
        rows = [file_records(self.rec, str(p), self.top, self.events, keep_going=True, source=str(f))
                for p, f in zip(batch["path"], batch["file"])]
        return {"path": [r[0]["path"] for r in rows], "records": [json.dumps(r) for r in rows]}


def init_ray(address: str | None, quiet: bool = False):
    ray = require("ray")
    debug = log.isEnabledFor(logging.DEBUG)
    if not ray.is_initialized():
        kw = {} if address else {"object_store_memory": LOCAL_OBJECT_STORE}
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, configure_logging=True,
                 logging_level=logging.WARNING if debug else logging.ERROR, **kw)
    ctx = require("ray.data").DataContext.get_current()
    for name in ("ray", "ray.data"):           # Ray's own progress lines: its logs folder has them
        logging.getLogger(name).setLevel(logging.WARNING if debug else logging.ERROR)
    ctx.enable_progress_bars = not quiet and sys.stderr.isatty()
    ctx.preserve_order = False               # records come back as they are made
    return ray


def placement(ray, actors: int | None, cpus_per_actor: float, gpus_per_actor: float | None) -> tuple[int, dict]:
    """(actors, per-actor resources) from what the cluster has."""
    res = ray.cluster_resources()
    gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 1))
    if gpus > 0 and gpus_per_actor != 0:
        per = gpus_per_actor or 1.0
        return actors or max(1, int(gpus // per)), {"num_gpus": per, "num_cpus": cpus_per_actor}
    return actors or max(1, int(cpus // cpus_per_actor)), {"num_cpus": cpus_per_actor}


def classify_with_ray(files: list, emit, *, address: str | None = None, bundle: str = "synth", backend: str = "auto",
                      precision: str = "fp32", options: dict | None = None, top: int = 3, actors: int | None = None,
                      cpus_per_actor: float = 1.0, gpus_per_actor: float | None = None, batch_size: int = 4,
                      events=None, quiet: bool = False) -> dict:
    """Classify ``files`` in Ray actors; ``emit(records)`` gets each file's records as they arrive.
    ``steady_clips_per_s``: from the first record to the last (without starting Ray and the actors)."""
    import json
    if not files:
        return {"files": 0, "seconds": 0.0, "actors": 0, "resources": {}, "steady_clips_per_s": None}
    ray = init_ray(address, quiet)
    n, resources = placement(ray, actors, cpus_per_actor, gpus_per_actor)
    log.info("Ray: %d actor(s) with %s each, over %d file(s)", n, resources, len(files))
    t0 = time.perf_counter()
    done = 0
    # records name files as given; workers read them by absolute path (their working folder is Ray's)
    ds = ray.data.from_items([{"path": str(p), "file": str(Path(p).resolve())} for p in files])
    bundle = str(Path(bundle).resolve()) if Path(bundle).is_dir() else str(bundle)
    options = {k: str(Path(v).resolve()) if k == "engines_dir" else v for k, v in (options or {}).items()}
    ds = ds.map_batches(ClipClassifier, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=n),
                        fn_constructor_kwargs=dict(bundle=bundle, backend=backend, precision=precision,
                                                   options=options, top=top, events=events,
                                                   cpu_threads=None if "num_gpus" in resources
                                                   else max(1, int(cpus_per_actor))),
                        **resources)
    first = last = None
    for row in ds.iter_rows():
        emit(json.loads(row["records"]))
        done += 1
        last = time.perf_counter()
        first = first or last
    steady = (done - 1) / (last - first) if done > 1 and last > first else None
    return {"files": done, "seconds": time.perf_counter() - t0, "actors": n, "resources": resources,
            "steady_clips_per_s": steady}
