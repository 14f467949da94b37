"""A soak of `serve` (issue #22): 8 synth streams with clips, JSON lines and MQTT, the web view and the
API polled, faults injected, RSS sampled. Not a pytest test (it runs for minutes); run it as

    nice -n 5 env PYTHONPATH=$PWD python tests/soak_serve.py --minutes 60 --out soak.json

Everything binds 127.0.0.1 (a private mosquitto on a free port). Faults, one every --every seconds,
in turn: the broker killed for 8 s, a stream disabled then enabled, a stream added then deleted,
a burst of bad requests (wrong type, cross-site, odd charset, deep JSON). At the end: SIGTERM, then
every event transition in the JSON lines is looked for on MQTT (events lost = the ones missing).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from output_rigs import Mosquitto, Subscriber  # noqa: E402
from secure_rigs import raw  # noqa: E402
from serve_rigs import http, stop_process  # noqa: E402

N = 8


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=60.0, help="seconds between faults")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    ap.add_argument("--out", default="soak.json")
    ap.add_argument("--trace", metavar="DIR", help="run serve under tracemalloc (tests/soak_trace.py), dumps in DIR")
    ap.add_argument("--trace-every", type=float, default=120.0, help="seconds between tracemalloc dumps")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="avgn-soak-"))
    broker = Mosquitto(work).start()
    cams = "".join(f"  s{i}: {{source: 'synth://?seed={11 + i}'}}\n" for i in range(N))
    cfg = work / "serve.yaml"
    cfg.write_text(f"api: {{port: 0}}\njsonl: {{path: '{work}/ev/{{camera}}.jsonl', decisions: false}}\n"
                   f"record: {{path: '{work}/clips', pre_capture: 2, post_capture: 2}}\n"
                   f"mqtt: {{host: 127.0.0.1, port: {broker.port}, topic_prefix: soak, stats_interval: 30}}\n"
                   f"cameras:\n{cams}")
    sub = Subscriber(broker.port, ["soak/events"])
    run = ([str(HERE / "soak_trace.py"), str(Path(a.trace).resolve()), str(a.trace_every)] if a.trace
           else [str(HERE / "soak_trace.py"), "/tmp", "0"] if os.environ.get("SOAK_TRIM")
           else ["-m", "avgn_edge.cli.main"])
    proc = subprocess.Popen([sys.executable, *run, "serve", str(cfg)], cwd=HERE.parent,
                            stdout=subprocess.PIPE, stderr=open(work / "serve.log", "w"), text=True)
    url = proc.stdout.readline().split()[-1]
    t0 = time.monotonic()
    rss, requests, faults, bad = [], 0, {}, 0
    stop = threading.Event()

    def poll():
        nonlocal requests, bad
        paths = [f"/web/s{i}/state" for i in range(N)] + ["/api/streams", "/metrics", "/web/s0/frame.jpg",
                                                          "/api/events", "/web/cameras"]
        k = 0
        while not stop.is_set():
            try:
                st = raw(url, "GET", paths[k % len(paths)])[0]
            except OSError:                      # counted as a failure, the soak goes on
                st = 599
            requests += 1
            bad += st >= 500
            k += 1
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    next_fault, next_sample, n = t0 + a.every, t0, 0
    end = t0 + a.minutes * 60
    try:
        while time.monotonic() < end and proc.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                rss.append((round(now - t0), round(rss_mb(proc.pid), 1)))
                next_sample += a.sample
            if now >= next_fault:
                kind = ("broker", "disable", "add-delete", "bad-requests")[n % 4]
                n += 1
                faults[kind] = faults.get(kind, 0) + 1
                if kind == "broker":
                    broker.stop()
                    time.sleep(8)
                    broker.start()
                elif kind == "disable":
                    http("PATCH", url + "/api/streams/s3", {"enabled": False})
                    time.sleep(5)
                    http("PATCH", url + "/api/streams/s3", {"enabled": True})
                elif kind == "add-delete":
                    http("POST", url + "/api/streams", {"name": "tmp", "source": "synth://?seed=99"})
                    time.sleep(10)
                    http("DELETE", url + "/api/streams/tmp")
                else:
                    for body, hdr in ((b'{"name":"x"}', {"Content-Type": "text/plain"}),
                                      (b'{"name":"x"}', {"Content-Type": "application/json", "Origin": "http://evil"}),
                                      (b"[" * 5000, {"Content-Type": "application/json"}),
                                      (b"{}", {"Content-Type": "application/json; charset=nope"})):
                        st, _, _ = raw(url, "POST", "/api/streams", body, hdr)
                        requests += 1
                        bad += st >= 500
                requests += 2
                next_fault += a.every
            time.sleep(0.5)
    finally:
        stop.set()
        poller.join(10)
        ran = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        time.sleep(2)
        sub.close()
        broker.stop()
    seen = {(m["after"]["id"], m["type"]) for m in sub.json("soak/events")}
    want = set()
    for f in (work / "ev").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r.get("type") in ("onset", "offset"):
                want.add((r["id"], {"onset": "new", "offset": "end"}[r["type"]]))
    lost = sorted(want - seen)
    result = {"minutes": round(ran / 60, 1), "streams": N, "requests": requests, "http_5xx": bad, "faults": faults,
              "event_transitions": len(want), "events_lost": len(lost), "lost_sample": lost[:5], "rc": rc,
              "parts_left": len(list((work / "clips").rglob("*.part"))),
              "clips": len(list((work / "clips").rglob("*.mp4"))), "rss_mb": rss, "work": str(work)}
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "rss_mb"}))
    return 0 if not lost and not bad and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
