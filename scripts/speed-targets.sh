#!/usr/bin/env bash
# Issue 25's targets measured in one sitting on this machine (run it idle: nothing else on the cores).
#   scripts/speed-targets.sh [DOCS] [NOTE]    (default docs; ~30 min on 2 cores)
# DOCS/measured/speed-targets.json  synth per clip, 3 interleaved repeats (AVGN staged/joined/INT8, dense on
#                                   1 thread and all cores), then the replay-source stream search (staged,
#                                   joined) and live rendering (scripts/speed-bench.py)
# DOCS/measured/bench.json          avgn-edge bench: stages, % of the measured peak, the stream search (replay),
#                                   RTSP cameras with decoding (streams.rtsp), live loop, accuracy
# DOCS/measured/bench-paper.{json,md}  avgn-edge bench --preset paper: paper's clip ratios, streaming decision
# DOCS/benchmarks.md                rendered anew from those; DOCS/measured/speed-targets-load.txt: load per part
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-docs}
NOTE=${2:-"scripts/speed-targets.sh on the otherwise idle machine"}
PY=${PYTHON:-.venv/bin/python}
LOAD="$DOCS/measured/speed-targets-load.txt"
mkdir -p "$DOCS/measured"
: > "$LOAD"
mark() { echo "$(date -u +%H:%M:%S) $1: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOAD"; }
mark "start"
PYTHONPATH=. "$PY" scripts/speed-bench.py --repeats 3 --reps 60 --stream-seconds 8 \
  --out "$DOCS/measured/speed-targets.json" >/dev/null
mark "clips and streams done"
"$PY" -m avgn_edge.cli.main bench --write-docs "$DOCS" --note "$NOTE" >/dev/null
mark "bench synth done"
"$PY" -m avgn_edge.cli.main bench --preset paper --write-docs "$DOCS" --note "$NOTE" >/dev/null
mark "bench paper done"
