#!/usr/bin/env python3
"""Turn onnx-tensorrt's docs/operators.md into the emulated TensorRT parser's table (data only:
operator -> supported, types). The emulator keeps one table per TensorRT major it emulates, in
avgn_edge/emulator/trt_parser_ops.json; the product's own table (export/trt_onnx_ops.json) is made
separately, so the two can disagree and tests/emulator/test_house_emulator_seam.py shows it when they do.

    git -C onnx-tensorrt show release/10.1-GA:docs/operators.md > ops.md
    scripts/emulator-parser-table.py ops.md --major 10 --source "onnx/onnx-tensorrt docs/operators.md @ 96e7811 (release/10.1-GA)"
"""

import argparse
import json
import re
from pathlib import Path

TYPOS = {"INF64": "INT64"}     # a typo in some revisions (ConstantOfShape)
OUT = Path(__file__).resolve().parents[1] / "avgn_edge" / "emulator" / "trt_parser_ops.json"


def parse(text: str) -> dict:
    m = re.search(r"TensorRT ([0-9.]+) supports operators in the inclusive range of opset (\d+) to opset (\d+)", text)
    ops = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", cells[0]) or cells[0] == "Operator":
            continue
        supported = cells[1].startswith("Y")
        types = [TYPOS.get(t.strip(), t.strip()) for t in cells[2].split(",") if t.strip()] \
            if supported and len(cells) > 2 else []
        ops[cells[0]] = {"supported": supported, "types": types}
    return {"documents": m.group(1) if m else None, "opset": [int(m.group(2)), int(m.group(3))] if m else None,
            "operators": dict(sorted(ops.items()))}


def dump(table: dict) -> str:
    """JSON with one operator per line (a table a reviewer can diff)."""
    majors = []
    for major, entry in table.items():
        head = {k: v for k, v in entry.items() if k != "operators"}
        ops = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in entry["operators"].items())
        majors.append(f" {json.dumps(major)}: {json.dumps(head)[:-1]}, \"operators\": {{\n{ops}\n }}}}")
    return "{\n" + ",\n".join(majors) + "\n}\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("operators_md")
    ap.add_argument("--major", required=True, help="the TensorRT major this table stands for (10, 11)")
    ap.add_argument("--source", required=True, help="where the file came from (repository, path, commit)")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    table = json.loads(OUT.read_text()) if OUT.exists() else {}
    entry = {"source": a.source, **({"note": a.note} if a.note else {}), **parse(Path(a.operators_md).read_text())}
    table[a.major] = entry
    OUT.write_text(dump(dict(sorted(table.items()))))
    print(f"{OUT.name}: TensorRT {a.major}: {len(entry['operators'])} operators from {a.source}")


if __name__ == "__main__":
    main()
