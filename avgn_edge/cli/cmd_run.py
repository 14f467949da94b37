"""avgn-edge run VIDEO|DIR [--json]: classify video files (frames and their audio track)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import SourceError
from .args import add_runtime_arguments, open_recognizer

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("inputs", nargs="+", metavar="VIDEO|DIR", help="video files or folders of videos")
    add_runtime_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--top", type=int, default=3, help="labels to report per file (default 3)")
    p.add_argument("--out", help="also write the JSON lines to this file")


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
    files = _expand(args.inputs)
    single = len(files) == 1 and not Path(args.inputs[0]).is_dir()
    failed = 0
    sink = open(args.out, "w") if args.out else None
    try:
        with open_recognizer(args) as rec:
            for path in files:
                try:
                    r = rec.classify_clip(path)
                except SourceError as exc:
                    if single:
                        raise
                    failed += 1
                    record = {"path": str(path), "error": str(exc)}
                    print(json.dumps(record) if args.json else f"{path}: ERROR {exc}", file=sys.stdout)
                    if sink:
                        sink.write(json.dumps(record) + "\n")
                    continue
                record = {"path": str(path), **r.to_dict(top=args.top), "has_audio": r.audio_ok}
                if args.json:
                    print(json.dumps(record), flush=True)
                else:
                    tops = ", ".join(f"{l} {s:.2f}" for l, s in r.top(args.top))
                    print(f"{path}: {tops}" + ("" if r.audio_ok else "  (no audio: classified with silence)"))
                if sink:
                    sink.write(json.dumps(record) + "\n")
    finally:
        if sink:
            sink.close()
    if failed:
        log.warning("%d of %d files could not be decoded", failed, len(files))
    return 1 if failed else 0
