"""avgn-edge serve CONFIG.yaml [--port P]: many cameras through one model, with an HTTP API and metrics.

The smallest config:

    api: {port: 8080}
    cameras:
      front: {source: rtsp://user:pass@192.168.1.20/stream}

See avgn_edge/serve/config.py for every key (and README "Serve many cameras"). SIGTERM, SIGHUP
(a closed terminal) or Ctrl-C stop it cleanly: capture stops, active events end, clips are finished,
outputs are flushed and closed, MQTT says ``offline``. SIGHUP is a clean stop, not a reload (restart
the service to apply a changed config; streams change at run time through the API).
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("avgn_edge.serve")


def add_arguments(p):
    p.add_argument("config", metavar="CONFIG.yaml", help="service configuration (YAML)")
    p.add_argument("--port", type=int, help="API port (overrides api.port; 0 = any free port)")
    p.add_argument("--host", help="API address (overrides api.host; off loopback a token is required)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")


def run(args) -> int:
    from ..deps import require
    for module in ("aiohttp", "prometheus_client", "yaml"):
        require(module)
    from ..serve.config import load_config, parse_config
    from ..serve.service import Service

    from .args import quiet_native_logs
    quiet_native_logs()
    cfg = load_config(args.config)
    if args.port is not None or args.host is not None:
        data = cfg.model_dump(exclude_unset=True)
        data.setdefault("api", {})
        if args.port is not None:
            data["api"]["port"] = args.port
        if args.host is not None:
            data["api"]["host"] = args.host
        cfg = parse_config(data, args.config)
    if args.check:                               # what start would refuse (but a taken port, an unreachable source)
        from ..serve.check import check_config
        check_config(cfg, args.config)
        print(f"{args.config}: ok, {len(cfg.cameras)} camera(s)")
        return 0
    from ..serve.memory import Trimmer, limit_arenas
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    limit_arenas()                               # before any stream thread: RSS stays flat (serve/memory.py)
    trimmer = Trimmer()
    svc = Service(cfg)
    try:
        svc.start()
        print(f"serving on http://{cfg.api.host}:{svc.api.port}", flush=True)
        while not stop.wait(0.5):
            trimmer.tick()
            if not svc.readiness()[0] and svc.scheduler.error is not None:
                log.error("the scheduler failed: stopping")
                break
    finally:
        svc.stop()
    return 0 if svc.scheduler is None or svc.scheduler.error is None else 1
