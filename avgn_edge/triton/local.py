"""The tritonserver that ships in the ``nvidia-pytriton`` wheel, run on 127.0.0.1 without a container.

    with LocalTriton("repo", http_port=0) as server:     # 0: free ports
        print(server.url, server.grpc_url, server.metrics_url)

The wheel carries a real Triton Inference Server (2.51, CPU capable) with the Python backend,
and one Python-backend stub per Python version. The stub embeds Python, and the Python
backend's C extension is built against NumPy 1.x, so it cannot share this environment (NumPy
2). ``prepare_server`` therefore installs, once, into a cache folder of its own
(``$AVGN_TRITON_HOME``, default ``~/.cache/avgn-edge/triton/py3.X``):

    server/   nvidia-pytriton (no dependencies: only its tritonserver, backends and stubs are used)
    venv/     a virtualenv of this Python with numpy<2 and the onnxruntime version this environment has

The stub ignores PYTHONPATH; it finds its packages the way pytriton arranges it, through the
``python3`` first on PATH (a virtualenv's, whose pyvenv.cfg gives it the site-packages), and
links this interpreter's libpython (LD_LIBRARY_PATH) or the system's ``libpython3.X``.
Only the Python backend is in the wheel: ``onnxruntime_onnx`` and ``tensorrt_plan`` models need
NVIDIA's Triton container (docs/architecture.md, "Beyond one machine").
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..cachedir import user_cache
from ..errors import BackendError, InputError, MissingDependency

log = logging.getLogger(__name__)

PYTRITON = "nvidia-pytriton==0.7.0"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class ServerEnv:
    root: Path

    @property
    def dist(self) -> Path:
        return self.root / "server" / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.dist / "bin" / "tritonserver"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def ready(self) -> bool:
        return (self.root / ".ready").is_file() and self.binary.is_file()

    def environ(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")])
        if sysconfig.get_config_var("Py_ENABLE_SHARED"):          # the stub links this interpreter's libpython
            libdir = sysconfig.get_config_var("LIBDIR")
            env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH")) if p)
        return env


def server_home() -> Path:
    base = os.environ.get("AVGN_TRITON_HOME")
    if base:
        return Path(base).expanduser()
    return user_cache("triton", f"py{PY}")


def prepare_server(home: str | Path | None = None) -> ServerEnv:
    """The server folder, installed on first use (pip; about 250 MB, a minute or two)."""
    env = ServerEnv(Path(home) if home else server_home())
    if env.ready:
        return env
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise MissingDependency("the bundled tritonserver (nvidia-pytriton) exists for Linux x86-64 only",
                                hint="run NVIDIA's Triton container instead: docs/architecture.md")
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependency("onnxruntime is needed to pick the server's onnxruntime version") from None
    log.info("installing the local Triton server into %s (once) ...", env.root)
    shutil.rmtree(env.root, ignore_errors=True)
    env.root.mkdir(parents=True)
    _pip(env.root / "server", "--no-deps", PYTRITON)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env.venv)], check=True)
    site = subprocess.run([str(env.venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    _pip(Path(site), "numpy<2", f"onnxruntime=={onnxruntime.__version__}")
    stub = env.dist / "python_backend_stubs" / PY / "triton_python_backend_stub"
    if not stub.is_file():
        raise MissingDependency(f"{PYTRITON} has no Python-backend stub for Python {PY}",
                                hint="use Python 3.8-3.13, or NVIDIA's Triton container")
    shutil.copy2(stub, env.dist / "backends" / "python" / "triton_python_backend_stub")
    (env.root / ".ready").write_text(f"{PYTRITON}\nnumpy<2 onnxruntime=={onnxruntime.__version__}\n")
    return env


def _pip(target: Path, *packages: str):
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(target),
           *packages]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " | ".join(line for line in done.stderr.strip().splitlines()[-3:])
        raise MissingDependency(f"could not install {' '.join(packages)} for the local Triton server: {tail}",
                                hint="it needs PyPI once; or set AVGN_TRITON_HOME to a prepared folder")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalTriton:
    """A tritonserver process serving ``repo`` on 127.0.0.1 (ports 0: free ones); a context manager."""

    def __init__(self, repo: str | Path, http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
                 home: str | Path | None = None, log_file: str | Path | None = None, ready_timeout: float = 180.0):
        self.repo = Path(repo).resolve()
        configs = sorted(self.repo.glob("*/config.pbtxt")) if self.repo.is_dir() else []
        if not configs:
            raise InputError(f"{repo} is not a Triton model repository (no */config.pbtxt)",
                             hint="make one with: avgn-edge export-triton BUNDLE --out REPO --platform python")
        other = [c.parent.name for c in configs if re.search(r'(platform|backend):\s*"(onnxruntime|tensorrt)',
                                                             c.read_text())]
        if other:
            raise InputError(f"{other[0]} needs Triton's ONNX Runtime or TensorRT backend, which the local server "
                             "lacks (it has the Python backend only)",
                             hint="export with --platform python to try it here; serve this one with NVIDIA's "
                                  "Triton container (README, Beyond one machine)")
        self.http_port, self.grpc_port, self.metrics_port = (p or free_port() for p in (http_port, grpc_port,
                                                                                        metrics_port))
        self.home, self.ready_timeout = home, ready_timeout
        self.log_file = Path(log_file) if log_file else self.repo.parent / f".tritonserver-{self.http_port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> "LocalTriton":
        env = prepare_server(self.home)
        cmd = [str(env.binary), f"--model-repository={self.repo}", f"--backend-directory={env.dist / 'backends'}",
               f"--cache-directory={env.dist / 'caches'}", "--http-address=127.0.0.1", f"--http-port={self.http_port}",
               "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}", "--metrics-address=127.0.0.1",
               f"--metrics-port={self.metrics_port}", "--allow-gpu-metrics=false", "--exit-timeout-secs=5",
               "--strict-readiness=true"]
        with open(self.log_file, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env.environ(),
                                         start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(f"tritonserver exited with code {self.proc.returncode}: {self.log_tail()}",
                                   hint=f"the full log is {self.log_file}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise BackendError(f"tritonserver was not ready after {self.ready_timeout:.0f} s: {self.log_tail()}",
                           hint=f"the full log is {self.log_file}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        wanted = [ln for ln in text if ln[:1] in ("E", "W") or "error" in ln.lower()] or text
        return " | ".join(ln.strip() for ln in wanted[-lines:])

    def stop(self, timeout: float = 15.0):
        """SIGTERM (Triton unloads the models and stops their stubs), then SIGKILL to the group."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("tritonserver did not stop in %.0f s: killed", timeout)
        try:
            os.killpg(p.pid, signal.SIGKILL)        # its session: the server and any stub left behind
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
