"""avgn-edge cache --data D --cache DIR: decode a dataset once into the snippet cache, and measure
clips/s from the video files vs from the cache (the way training reads them)."""

from __future__ import annotations

import json


def add_arguments(p):
    p.add_argument("--data", required=True, help="a folder of videos or a path,label[,start,end] list")
    p.add_argument("--cache", required=True, metavar="DIR", help="cache folder (as train --cache)")
    p.add_argument("--preset", default="synth", help="model preset whose geometry to cache (default synth)")
    p.add_argument("--candidates", type=int, default=1,
                   help="frames per segment (3 for train --augment with frame jitter; default 1)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--clips", type=int, help="measure on the first N clips (default all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from ..config import get_preset
    from ..data.datasets import open_training_data
    from ..train.throughput import measure
    from ..errors import InputError

    if args.candidates < 1 or args.workers < 0 or args.batch_size < 1:
        raise InputError("--candidates and --batch-size must be positive, --workers >= 0")
    cfg = get_preset(args.preset)
    plain, cfg = open_training_data(args.data, cfg, candidates=args.candidates)
    cached, _ = open_training_data(args.data, cfg, cache=args.cache, candidates=args.candidates)
    r = measure(plain, cached, args.clips, args.batch_size, args.workers, progress=not args.json)
    if args.json:
        print(json.dumps(r))
    else:
        f = r["fill"]
        rate = f" at {f['decode_clips_per_s']} clips/s" if f["decoded"] else ""
        print(f"cache {r['cache_dir']} ({r['cache_gib']} GiB): {f['clips']} clips, {f['decoded']} decoded now{rate}, "
              f"{f['undecodable']} undecodable, {f['no_audio']} without audio")
        print(f"{r['clips']} clips, {r['workers']} worker(s): from the files {r['files_clips_per_s']} clips/s, "
              f"from the cache {r['cache_clips_per_s']} clips/s ({r['speedup']}x)")
    return 0
