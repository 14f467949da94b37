#!/usr/bin/env python3
"""Make tests/data/tiny_bundle: the tiny preset trained with the real recipe and exported, the
same way tests/conftest.py's ``tiny_run``/``tiny_bundle`` do it at session start (seed 0).
Checked in (2.1 MB of fp32 ONNX, 1.2 MB of it the tiny preset's focus_local convolutions), so runtime,
serve and output tests need neither torch nor training.

    PYTHONPATH=. python scripts/make-tiny-bundle.py          # needs the train extra; ~1 min, minutes when busy
"""

import shutil
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny_bundle"


def main() -> int:
    from avgn_edge.config import get_preset
    from avgn_edge.data.datasets import open_dataset
    from avgn_edge.export.onnx_export import export_bundle
    from avgn_edge.train.loop import train
    from avgn_edge.train.recipe import RECIPES
    cfg = get_preset("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        # the conftest's data set: background=0.08 keeps "always background" from winning the tiny recipe
        ds = open_dataset("synth:seed=0,clips=4000,background=0.08", cfg)
        run = train(cfg, ds, Path(tmp) / "run", RECIPES["tiny"], seed=0, progress=False, workers=0)
        shutil.rmtree(OUT, ignore_errors=True)
        export_bundle(run, OUT, parity_data="synth:seed=1000,clips=4")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
