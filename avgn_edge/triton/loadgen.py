"""N streams, each its own client (as N edge boxes would be), against one Triton server, and what
the server's own metrics say about its batching.

    python -m avgn_edge.triton.loadgen --streams 8                    # a local server of the python repo
    python -m avgn_edge.triton.loadgen --url grpc://gpu:8001 --metrics http://gpu:8002/metrics

Each stream is a ``Recognizer`` on the Triton backend in its own thread, pushing the snippets of
a synthetic clip as fast as the server answers (one request per snippet, two per decision). The
result per model is the change in Triton's counters over the run: requests
(``nv_inference_request_success``), items (``nv_inference_count``) and executions
(``nv_inference_exec_count``); executions < requests means the dynamic batcher joined requests
of different clients into one execution.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

COUNTERS = {"nv_inference_request_success": "requests", "nv_inference_count": "items",
            "nv_inference_exec_count": "executions"}


def read_metrics(url: str) -> dict[str, dict[str, float]]:
    """model -> {"requests", "items", "executions"} from Triton's Prometheus endpoint."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):       # counters: family "x", samples "x_total"
        for s in family.samples if family.name in COUNTERS else ():
            out.setdefault(s.labels["model"], {})[COUNTERS[family.name]] = s.value
    return out


def run_streams(url: str, metrics_url: str, streams: int = 8, decisions: int = 10, bundle="synth",
                precision: str = "fp32", stride: int = 2, timeout: float = 30.0) -> dict:
    from ..bundle import load_bundle
    from ..data.datasets import open_dataset
    from ..runtime.recognizer import Recognizer
    b = load_bundle(bundle)
    cfg = b.config
    recs = [Recognizer.load(b, "triton", precision, stride=stride, url=url, timeout=timeout) for _ in range(streams)]
    ds = open_dataset(f"synth:seed=7,clips={streams}", cfg)
    clips = [ds[i] for i in range(streams)]
    n = cfg.num_snippets + stride * (decisions - 1)
    start, errors, made = threading.Barrier(streams + 1), [], [0] * streams

    def stream(i):
        rec, clip = recs[i], clips[i]
        start.wait()
        try:
            for j in range(n):
                r = rec.push(clip.frames[j % len(clip.frames)], clip.audio[j % len(clip.audio)],
                             (j + 1) * cfg.snippet_period)
                made[i] += r is not None
        except Exception as exc:                 # reported below; the other streams go on
            errors.append(f"stream {i}: {exc}")

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    before = read_metrics(metrics_url)
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    after = read_metrics(metrics_url)
    for r in recs:
        r.close()
    models = {}
    for name, counts in sorted(after.items()):
        d = {k: int(v - before.get(name, {}).get(k, 0)) for k, v in counts.items()}
        if d.get("requests"):
            d["items_per_execution"] = round(d["items"] / max(d["executions"], 1), 2)
            d["requests_per_execution"] = round(d["requests"] / max(d["executions"], 1), 2)
            models[name] = d
    return {"streams": streams, "snippets": streams * n, "decisions": sum(made), "seconds": round(seconds, 2),
            "snippets_per_s": round(streams * n / seconds, 1), "errors": errors, "models": models}


def markdown(res: dict) -> str:
    rows = ["| model | requests | items | executions | requests per execution |", "|---|---|---|---|---|"]
    rows += [f"| {m} | {d['requests']} | {d['items']} | {d['executions']} | {d['requests_per_execution']:.2f} |"
             for m, d in res["models"].items()]
    return "\n".join(rows)


def section(runs: list[dict], note: str) -> str:
    """The docs/benchmarks.md section of one or more runs (fewest streams first)."""
    out = ["## Many clients, one Triton server (`--backend triton`, the `--platform python` repository)", "", note, "",
           "Each stream is its own client (a Recognizer on the Triton backend in its own thread: one edge box), "
           "pushing a synthetic clip's snippets as fast as the server answers. Counters are Triton's own "
           "(port 8002), the change over the run; executions < requests is the dynamic batcher joining "
           "requests of different clients. One stream waits for each answer (latency-bound), so eight "
           "keep the server busier; the ensembles (`avgn_encode`, `avgn_focus_head`) execute once per "
           "request by design: their steps are the models that batch.", "",
           "| streams | snippets/s (all streams) | decisions | glance_visual requests / executions | "
           "decide requests / executions |", "|---|---|---|---|---|"]
    for r in runs:
        g, d = r["models"]["avgn_glance_visual"], r["models"]["avgn_decide"]
        out.append(f"| {r['streams']} | {r['snippets_per_s']} | {r['decisions']} | {g['requests']} / {g['executions']} "
                   f"| {d['requests']} / {d['executions']} |")
    return "\n".join(out + ["", f"Per model, {runs[-1]['streams']} streams:", "", markdown(runs[-1]), ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m avgn_edge.triton.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("--url", help="Triton URL (default: start a local server of a python repository of --bundle)")
    p.add_argument("--metrics", help="Triton metrics URL (default: the local server's)")
    p.add_argument("--bundle", default="synth")
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--decisions", type=int, default=10, help="decisions per stream (default 10)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--write", metavar="FILE.md", help="also run 1 stream, and write both as a docs section")
    args = p.parse_args(argv)
    counts = [1, args.streams] if args.write else [args.streams]
    load = os.getloadavg()[0]
    if args.url:
        runs = [run_streams(args.url, args.metrics, n, args.decisions, args.bundle) for n in counts]
    else:
        from ..bundle import load_bundle
        from .local import LocalTriton
        from .repository import export_repository
        with tempfile.TemporaryDirectory() as tmp:
            export_repository(load_bundle(args.bundle), tmp, platform="python")
            with LocalTriton(tmp, 0, 0, 0) as server:
                runs = [run_streams(server.grpc_url, server.metrics_url, n, args.decisions, args.bundle) for n in counts]
    res = runs[-1]
    print(json.dumps(res, indent=1) if args.json else
          f"{res['streams']} streams, {res['snippets']} snippets in {res['seconds']} s ({res['snippets_per_s']} "
          f"snippets/s), {res['decisions']} decisions, errors {len(res['errors'])}\n\n{markdown(res)}")
    if args.write:
        from ..bench.report import measured_note
        cmd = f"python -m avgn_edge.triton.loadgen --streams {args.streams} --decisions {args.decisions}"
        Path(args.write).write_text(section(runs, measured_note(cmd, load)))
    return 1 if any(r["errors"] for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
