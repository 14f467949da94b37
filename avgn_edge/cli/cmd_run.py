"""avgn-edge run VIDEO|DIR [--json] [--out FILE [--resume]] [--ray [ADDRESS]]: classify video files.

One record per file (avgn_edge/archive/records.py). ``--ray`` classifies in Ray actors, one model
each, on a local Ray or the cluster at ADDRESS (avgn_edge/archive/ray_job.py); the records are the
same. ``--resume`` skips the files already recorded in ``--out`` and appends the others.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from ..errors import InputError, SourceError
from .args import add_event_arguments, add_runtime_arguments, backend_options, event_settings, open_recognizer

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("inputs", nargs="+", metavar="VIDEO|DIR", help="video files or folders of videos")
    add_runtime_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--top", type=int, default=3, help="labels to report per file (default 3)")
    p.add_argument("--out", help="also write the JSON lines to this file")
    p.add_argument("--resume", action="store_true", help="skip the files already in --out and append the rest")
    p.add_argument("--events", action="store_true",
                   help="also an event record per transition of each file's event tracker (flags below)")
    add_event_arguments(p)
    g = p.add_argument_group("Ray (a video archive over a cluster)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="classify in Ray actors: a local Ray, or the cluster at ADDRESS (auto, ray://HEAD:10001)")
    g.add_argument("--actors", type=int, help="actors, one model each (default: one per GPU, else per CPU group)")
    g.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs each actor takes (default 1)")
    g.add_argument("--gpus-per-actor", type=float, help="GPUs each actor takes where the cluster has GPUs (default 1)")
    g.add_argument("--batch", type=int, default=4, help="files per actor call (default 4)")


def _expand(inputs) -> list[Path]:
    from ..media import list_videos
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_videos(p)
            if not found:
                raise SourceError(f"no video files in folder {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise SourceError(f"no such file or folder: {p}")
    return files


def run(args) -> int:
    from ..archive.records import RecordWriter, file_records, human, read_done
    files = _expand(args.inputs)
    single = len(files) == 1 and not Path(args.inputs[0]).is_dir()
    if args.resume and not args.out:
        raise InputError("--resume needs --out FILE (the records written so far)")
    done = read_done(args.out) if args.resume else set()
    todo = [f for f in files if str(f) not in done]
    if done:
        log.info("%d of %d files are in %s already: skipped", len(files) - len(todo), len(files), args.out)
    failed = 0
    events = None
    if args.events:
        import functools

        from ..bundle import load_bundle
        from ..events import make_tracker
        b = load_bundle(args.bundle, verify=False)
        events = functools.partial(make_tracker, event_settings(args, b.labels, b.event_defaults))

    def emit(records):
        nonlocal failed
        failed += sum("error" in r for r in records)
        for r in records:
            print(json.dumps(r) if args.json else human(r, args.top), flush=True)
        sink.write(records)

    t0 = time.perf_counter()
    with RecordWriter(args.out, append=args.resume) as sink:
        if args.ray is not None:
            from ..archive.ray_job import classify_with_ray
            ray = classify_with_ray(todo, emit, address=args.ray or None, bundle=args.bundle, backend=args.backend,
                                    precision=args.precision, options=backend_options(args), top=args.top,
                                    actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                                    gpus_per_actor=args.gpus_per_actor, batch_size=args.batch, events=events,
                                    quiet=args.log_quiet)
            steady = ray["steady_clips_per_s"]
            how = (f" (Ray, {ray['actors']} actor(s) with {ray['resources']}"
                   + (f"; {steady:.2f} clips/s from the first record on" if steady else "") + ")")
        else:
            with open_recognizer(args) as rec:
                for path in todo:
                    emit(file_records(rec, path, args.top, events, strict=single))
            how = ""
    seconds = time.perf_counter() - t0
    if todo:
        log.info("%d files in %.1f s: %.2f clips/s%s", len(todo), seconds, len(todo) / seconds, how)
    if failed:
        log.warning("%d of %d files failed (their records say why)", failed, len(todo))
    return 1 if failed else 0
