"""Cameras that hear, measured (docs/benchmarks.md): N local RTSP cameras (tests/rtsp_camera.py: 640x480,
10 fps H.264 with G.711 or AAC sound, on 127.0.0.1) in one in-process ``serve`` for SECONDS, and the
software decode cost of one camera (CPU % of a core and CPU ms per frame, PyAV, picture and sound), and
the cost of keeping a 1280x720 record stream's packets for clips copied without re-encoding (io/recordstream.py).

    PYTHONPATH=. python scripts/hear-bench.py [--cameras 8] [--seconds 180] [--decode-seconds 30] [--only-record]
"""

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(codec, *more):
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests" / "rtsp_camera.py"), str(port), "10", "--audio", codec,
                          *more], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, f"rtsp://127.0.0.1:{port}/cam"


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def decode_cost(url, seconds):
    from avgn_edge.io import open_video
    with open_video(url, camera="cost") as src:
        audio = src.audio(16000)
        time.sleep(2.0)
        f0, c0, t0 = src.stats["frames"], cpu(), time.monotonic()
        time.sleep(seconds)
        f1, c1, t1 = src.stats["frames"], cpu(), time.monotonic()
        gaps = audio.stats["gaps"]
    return {"cpu_percent_of_a_core": round(100 * (c1 - c0) / (t1 - t0), 1),
            "cpu_ms_per_frame": round(1e3 * (c1 - c0) / max(f1 - f0, 1), 2), "frames": f1 - f0, "audio_gaps": gaps}


def record_cost(url, seconds):
    """CPU of one RecordStream (demux only, packets kept 8 s) on a 1280x720 10 fps H.264 + AAC stream."""
    from avgn_edge.io.recordstream import RecordStream
    rec = RecordStream(url, camera="cost", keep=8.0)
    try:
        time.sleep(3.0)
        n0, c0, t0 = rec._seq, cpu(), time.monotonic()
        time.sleep(seconds)
        n1, c1, t1 = rec._seq, cpu(), time.monotonic()
        return {"cpu_percent_of_a_core": round(100 * (c1 - c0) / (t1 - t0), 2), "packets": n1 - n0,
                "cpu_us_per_packet": round(1e6 * (c1 - c0) / max(n1 - n0, 1), 1), "ring_packets": len(rec._ring)}
    finally:
        rec.close()


def serve(urls, seconds):
    from avgn_edge.serve.config import parse_config
    from avgn_edge.serve.service import Service
    cams = {f"cam{i}": {"source": u} for i, u in enumerate(urls)}
    svc = Service(parse_config({"cameras": cams, "api": {"port": 0}}))
    svc.start()
    try:
        time.sleep(15.0)                                    # all open and settled
        streams = svc.stream_list()
        before = {s.name: (s.stats.snippets, s.stats.audio_gaps, s.audio_info().get("gaps", 0)) for s in streams}
        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu(), time.monotonic()
        out = {}
        for s in streams:
            info, a = s.info(), s.audio_info()
            b = before[s.name]
            out[s.name] = {"status": s.status, "audio": s.audio_kind, "snippets": s.stats.snippets - b[0],
                           "snippet_audio_gaps": s.stats.audio_gaps - b[1], "source_audio_gaps": a.get("gaps", 0) - b[2],
                           "gap_seconds": a.get("gap_seconds"), "drift_ms": a.get("drift_ms"),
                           "decisions": info["counters"]["decisions"], "late": info["counters"]["dropped_by_reason"],
                           "latency_p50_ms": info["counters"]["latency_p50_ms"],
                           "latency_p95_ms": info["counters"]["latency_p95_ms"]}
        return {"seconds": round(t1 - t0, 1), "process_cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 1),
                "streams": out}
    finally:
        svc.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--decode-seconds", type=float, default=30.0)
    ap.add_argument("--only-record", action="store_true", help="only the record stream's cost")
    a = ap.parse_args()
    procs = []
    try:
        result = {}
        p, url = start("aac", "--hi", "1280x720")
        procs.append(p)
        result["record_stream_cost_720p_aac"] = record_cost(url.replace("/cam", "/hi"), a.decode_seconds)
        if a.only_record:
            print(json.dumps(result, indent=1))
            return
        for codec in ("pcmu", "aac"):
            p, url = start(codec)
            procs.append(p)
            result[f"decode_cost_{codec}"] = decode_cost(url, a.decode_seconds)
        urls = [url for p, url in (start("pcmu" if i % 2 == 0 else "aac") for i in range(a.cameras))
                if procs.append(p) is None]
        result["serve"] = serve(urls, a.seconds)
        print(json.dumps(result, indent=1))
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    sys.exit(main())
