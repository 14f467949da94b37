"""Many streams with real decoding: how many local RTSP cameras (H.264 640x360 10 fps + AAC, from
the camera farm) one service runs in real time, and what each camera costs in CPU per second:
its demux/decode thread vs the model calls vs the rest (threadcpu.py), the farm's own CPU apart.

Same criteria and search as the replayed-synth search (streams.py), batched only: the replay
search answers batched vs batch 1; this one answers what decoding adds per camera.
"""

from __future__ import annotations

import logging

from .camera_farm import CLIP, CameraFarm, farm_unavailable
from .streams import realtime_run, search_max
from .threadcpu import process_cpu, split_by_role, thread_cpu

log = logging.getLogger(__name__)
CONNECT_SECONDS = 3.0          # RTSP setup and FFmpeg's 1 s probe, before the window starts filling


def camera_run(bundle: str, farm: CameraFarm, n: int, seconds: float, max_batch: int = 64) -> dict:
    """One real-time run of the service on the farm's first n cameras, with the CPU it took."""
    def meter():
        threads, own, server = thread_cpu(), process_cpu(), farm.cpu_seconds()

        def finish(span: float) -> dict:
            roles = split_by_role(threads, thread_cpu())
            return {"cpu_ms_per_camera_s": {k: round(1e3 * v / span / n, 2) for k, v in roles.items()},
                    "process_cpu_ms_s": round(1e3 * (process_cpu() - own) / span, 1),
                    "server_cpu_ms_s": round(1e3 * (farm.cpu_seconds() - server) / span, 1)}
        return finish
    return realtime_run(bundle, n, max_batch, seconds, source="rtsp", uris=farm.urls[:n], meter=meter,
                        connect=CONNECT_SECONDS)


def max_realtime_cameras(bundle: str, seconds: float, start: int = 4, limit: int = 64, bisect: bool = True,
                         within: int = 8) -> dict:
    """The most farm cameras that run in real time (batched), and the CPU per camera at that count
    (at the smallest count tried when none was real time). ``{"skipped": why}`` without a farm."""
    why = farm_unavailable()
    if why:
        log.warning("%s: no RTSP camera benchmark", why)
        return {"skipped": why}
    with CameraFarm(limit) as farm:
        best, runs = search_max(lambda _mode, n: camera_run(bundle, farm, n, seconds), ["batched"],
                                start, limit, bisect, within)
    runs.sort(key=lambda r: r["streams"])
    at = next((r for r in runs if r["streams"] == best["batched"]), runs[0])
    return {"max_realtime_cameras": best["batched"], "cameras_measured": at["streams"],
            "cpu_ms_per_camera_s": at["cpu_ms_per_camera_s"], "server_cpu_ms_s": at["server_cpu_ms_s"],
            "process_cpu_ms_s": at["process_cpu_ms_s"],
            "clip": dict(CLIP, video="H.264 (no B-frames, keyframe every second)", audio="AAC 16 kHz mono"),
            "search": {"start": start, "limit": limit, "bisect": bisect, "within": within},
            "seconds_per_run": seconds, "runs": runs}
