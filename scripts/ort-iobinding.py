"""Does ONNX Runtime's I/O binding pay on the CPU? Each stage of a bundle timed both ways, interleaved.

    PYTHONPATH=. python scripts/ort-iobinding.py [--bundle synth] [--batch 1 8] [--reps 200] [--repeats 3]

``run``: ``session.run(None, feeds)`` as OrtBackend calls it (inputs wrapped, outputs allocated
and handed back as NumPy arrays). ``bound``: ``run_with_iobinding`` with the inputs bound from
the same NumPy arrays and the outputs bound into NumPy buffers allocated once (no allocation and
no hand-back copy per call). Each stage's session is OrtBackend's own (same settings), fed with
seeded random inputs of the stage's shapes; p50 of ``--reps`` calls per form, the two forms
alternating call by call; ``--repeats`` rounds, each ratio's spread printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
          "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


def feeds_for(sess, batch: int, rng) -> dict[str, np.ndarray]:
    out = {}
    for i in sess.get_inputs():
        shape = [batch if (j == 0 and not isinstance(d, int)) else (d if isinstance(d, int) else 8)
                 for j, d in enumerate(i.shape)]
        dt = DTYPES[i.type]
        out[i.name] = (rng.integers(0, 4, shape) if np.issubdtype(dt, np.integer) else rng.standard_normal(shape)).astype(dt)
    return out


def bound_call(sess, feeds):
    """A callable running ``sess`` through an I/O binding with outputs preallocated once."""
    ref = sess.run(None, feeds)
    binding = sess.io_binding()
    for name, x in feeds.items():
        binding.bind_cpu_input(name, x)
    outs = [np.empty_like(r) for r in ref]
    for o, buf in zip(sess.get_outputs(), outs):
        binding.bind_output(o.name, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
    return lambda: sess.run_with_iobinding(binding), outs, ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="synth")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    from avgn_edge.bundle import STAGES, load_bundle
    from avgn_edge.runtime.ort import OrtBackend
    b = load_bundle(a.bundle)
    be = OrtBackend(b)
    rng = np.random.default_rng(0)
    res = {"bundle": a.bundle, "load_before": os.getloadavg()[0], "stages": {}}
    for stage in STAGES:
        sess = be.sessions[stage]
        for batch in a.batch:
            feeds = feeds_for(sess, batch, rng)
            try:
                bound, outs, ref = bound_call(sess, feeds)
            except Exception as exc:           # a stage whose shapes the random feed cannot satisfy
                print(f"{stage} batch {batch}: skipped ({exc.__class__.__name__}: {str(exc)[:80]})")
                continue
            bound()
            assert all(np.allclose(o, r, atol=1e-5) for o, r in zip(outs, ref)), stage   # same numbers
            rounds = []
            for _ in range(a.repeats):
                t_run, t_bound = [], []
                for _ in range(a.reps):
                    t = time.perf_counter(); sess.run(None, feeds); t_run.append(time.perf_counter() - t)
                    t = time.perf_counter(); bound(); t_bound.append(time.perf_counter() - t)
                r, bd = statistics.median(t_run) * 1e3, statistics.median(t_bound) * 1e3
                rounds.append({"run_ms": round(r, 4), "bound_ms": round(bd, 4), "run_vs_bound": round(r / bd, 3)})
            res["stages"][f"{stage}@{batch}"] = rounds
            ratios = [x["run_vs_bound"] for x in rounds]
            print(f"{stage:14s} batch {batch:2d}: run {rounds[-1]['run_ms']:.3f} ms, bound "
                  f"{rounds[-1]['bound_ms']:.3f} ms; run/bound {min(ratios):.2f}-{max(ratios):.2f}x")
    res["load_after"] = os.getloadavg()[0]
    print(f"load average {res['load_before']:.1f} -> {res['load_after']:.1f}")
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
