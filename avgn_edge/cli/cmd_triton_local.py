"""avgn-edge triton-local REPO [--http-port P]: the tritonserver of the nvidia-pytriton wheel, on 127.0.0.1.

For trying a ``--platform python`` repository without a container. The first run installs the
server and its Python environment into ~/.cache/avgn-edge/triton/ (or $AVGN_TRITON_HOME; needs
PyPI once). On a GPU server run NVIDIA's Triton container instead (docs/architecture.md).
Ctrl-C or SIGTERM stops it (the models are unloaded, the stubs stopped).
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("repo", metavar="REPO", nargs="?", help="model repository (avgn-edge export-triton --platform python)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000; 0 = any free port)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001; 0 = any free port)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    p.add_argument("--prepare", action="store_true", help="only install the server (once), then exit")


def run(args) -> int:
    from ..errors import InputError
    from ..triton.local import LocalTriton, prepare_server
    if args.prepare:
        env = prepare_server()
        print(f"the local Triton server is ready in {env.root}")
        return 0
    if not args.repo:
        raise InputError("which repository? avgn-edge triton-local REPO", hint="or --prepare to only install the server")
    server = LocalTriton(args.repo, args.http_port, args.grpc_port, args.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(f"serving {args.repo} on {server.url} (gRPC {server.grpc_url}, metrics {server.metrics_url}); "
              f"log {server.log_file}", flush=True)
        while not stop.wait(0.5):
            if server.proc is None or server.proc.poll() is not None:
                log.error("tritonserver exited: %s", server.log_tail())
                return 1
    return 0
