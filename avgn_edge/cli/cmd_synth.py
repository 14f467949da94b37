"""avgn-edge synth --out DIR --clips N --seed S: the benchmark as MP4 files + labels.json.

Each entry's ``events`` are spans in seconds with boxes as fractions of the frame, so a model
of any T or frame size reads them; ``event_snippets``/``boxes``/``snippet_times`` (this
preset's snippets, pixels) stay for older readers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--clips", type=int, default=100, help="number of clips (default 100)")
    p.add_argument("--seed", type=int, default=1000, help="benchmark seed (default 1000, the test split)")
    p.add_argument("--distractors", type=float, default=0.5, help="distractor density in [0,1] (default 0.5)")
    p.add_argument("--noise", type=float, default=0.25, help="noise level in [0,1] (default 0.25)")
    p.add_argument("--background", type=float, default=0.25,
                   help="share of clips with no event, labelled 'background' (default 0.25)")
    p.add_argument("--preset", default="synth", help="model preset whose geometry to use (default synth)")


def run(args) -> int:
    from tqdm import tqdm

    from ..config import get_preset
    from ..data.synth import CLASSES, SynthSpec, clip_video, make_clip
    from ..media import write_video

    spec = SynthSpec.for_model(get_preset(args.preset), seed=args.seed, clips=args.clips,
                               distractors=args.distractors, noise=args.noise, background=args.background)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror}") from None
    entries = []
    for i in tqdm(range(spec.clips), desc="clips", dynamic_ncols=True):
        clip = make_clip(spec, i)
        frames, audio = clip_video(spec, i)
        name = f"clip_{i:05d}.mp4"
        write_video(out / name, frames, spec.fps, audio, spec.sample_rate)
        ev, period = clip.event_snippets, spec.snippet_period
        events = [] if not len(ev) else [{      # times: any model's T maps them (data/spans.py)
            "start": round(float(ev[0]) * period, 6), "end": round(float(ev[-1] + 1) * period, 6),
            "box": [round(float(v) / spec.frame_size, 6) for v in clip.boxes[ev[0]]]}]
        entries.append({
            "file": name, "label": CLASSES[clip.label], "label_index": clip.label, "events": events,
            "duration": round(spec.num_snippets * period, 6),
            "event_snippets": clip.event_snippets.tolist(),
            "boxes": [None if b != b else [float(v) for v in box] for box, b in zip(clip.boxes, clip.boxes[:, 0])],
            "snippet_times": [round((j + 1) * spec.snippet_period, 6) for j in range(spec.num_snippets)],
        })
    meta = {"seed": spec.seed, "clips": spec.clips, "distractors": spec.distractors, "noise": spec.noise,
            "background": spec.background}
    tmp = out / "labels.json.tmp"
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, out / "labels.json")
    (out / "benchmark.json").write_text(json.dumps({**meta, "labels": list(CLASSES)}, indent=1))
    log.info("wrote %d clips and labels.json to %s", spec.clips, out)
    return 0
