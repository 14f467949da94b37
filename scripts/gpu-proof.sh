#!/usr/bin/env bash
# One prepared run for a machine with a real NVIDIA GPU (cuda-bindings and PyTorch present; no TensorRT
# and no network needed): at most about 6 minutes (each step bounded), everything written under OUT ($OUT, else the first argument,
# else ./gpu-proof-out). Run from a copy of the repository (not pip-installed: PYTHONPATH is set here):
#
#     bash scripts/gpu-proof.sh [OUT]          # AVGN_EMULATE_GPU=1 for a dry run on the emulated GPU
#
# Steps, each under its own time limit, a failure not stopping the next (rc, seconds in OUT/steps.jsonl,
# output in OUT/<step>.log):
#   env        the device, the driver, NVRTC, the packages present            -> env.json
#   selftest   the crop kernel and the device rings vs their NumPy reference  (python -m avgn_edge.kernels.selftest)
#   gpu-tests  the gpu-marked tests that need no TensorRT                     -> gpu-tests.xml
#   train      the paper preset's training throughput with AMP: clips/s, peak memory per stage -> train.json
#   crop       the crop kernel's time per patch batch (B = 1, 8, 32 windows)  -> crop.json
# then OUT/summary.json. Where the figures go: docs/benchmarks.md, section "GPU proof" (README: "On a GPU").
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-${1:-gpu-proof-out}}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XDG_CACHE_HOME="$OUT/cache"              # the kernel's cubin cache: inside OUT, nothing else written
export PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 HF_HUB_OFFLINE=1
: > "$OUT/steps.jsonl"

step() {                                        # step NAME SECONDS COMMAND...
    local name=$1 limit=$(( $2 * ${GPU_PROOF_SLACK:-1} )) t0 t1 rc      # SLACK: a dry run on a slow machine
    shift 2
    echo "== $name (at most ${limit}s)"
    t0=$(date +%s%N)
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    t1=$(date +%s%N)
    printf '{"step": "%s", "rc": %d, "seconds": %s, "timed_out": %s}\n' "$name" "$rc" \
        "$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / 1e9 }")" \
        "$({ [ $rc = 124 ] || [ $rc = 137 ]; } && echo true || echo false)" >> "$OUT/steps.jsonl"
    tail -n 3 "$OUT/$name.log"
}

step env 45 "$PY" scripts/gpu_proof.py env "$OUT"
step selftest 60 "$PY" -m avgn_edge.kernels.selftest
# gpu-marked, no TensorRT: the kernel/ring tests and CUDA training; the TensorRT modules skip without it
step gpu-tests 120 "$PY" -m pytest -m gpu -q -p no:cacheprovider \
    --junitxml "$OUT/gpu-tests.xml" tests/test_kernels.py tests/test_train_gpu.py
step train "${GPU_PROOF_TRAIN_SECONDS:-100}" "$PY" scripts/gpu_proof.py train "$OUT"
step crop 45 "$PY" scripts/gpu_proof.py crop "$OUT"
"$PY" scripts/gpu_proof.py summary "$OUT" > /dev/null
echo "summary: $OUT/summary.json"
