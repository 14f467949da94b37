"""Triton backend: the stages run on a remote Triton Inference Server (tritonclient, HTTP or gRPC).

    backend = open_backend(bundle, "triton", url="grpc://gpu-server:8001")    # or http://host:8000

The server runs the models of ``avgn-edge export-triton`` (any platform); this process keeps
everything with state (each stream's feature ring and frames) and the crop, so the host
pipeline runs unchanged and batches as it does locally; two ensembles save round trips
(``chains``: one call per snippet batch, two per decision batch). Opening checks the server,
that every stage model is ready, and that each runs this bundle's graph of this precision
(the sha256 in its config) with this bundle's tensors; any failure is one clear
``BackendError``, as is a call that times out or meets a server gone down.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlparse

import numpy as np

from ..bundle import STAGES, Bundle
from ..deps import require
from ..errors import BackendError, InputError
from .triton_names import PREFIX, SHA256, model_name
from .pipeline import CHAINS, chain_io

log = logging.getLogger(__name__)

_TYPES = {"TYPE_FP32": "float32", "TYPE_FP16": "float16", "TYPE_INT32": "int32", "TYPE_INT64": "int64",
          "TYPE_UINT8": "uint8", "TYPE_BOOL": "bool"}


def parse_url(url: str) -> tuple[str, str, bool]:
    """(protocol "http"|"grpc", "host:port", ssl) from ``http://h:8000``, ``grpc://h:8001``, ``https://…``, ``h:p``."""
    if not url:
        raise InputError("the Triton backend needs a server URL", hint="pass --triton-url http://HOST:8000 "
                                                                         "(or grpc://HOST:8001)")
    u = urlparse(url if "://" in url else f"http://{url}")
    if u.scheme not in ("http", "https", "grpc", "grpcs") or not u.hostname:
        raise InputError(f"not a Triton URL: {url!r}", hint="http://HOST:8000, https://HOST, grpc://HOST:8001")
    grpc = u.scheme.startswith("grpc")
    port = u.port or (8001 if grpc else 8000)
    return ("grpc" if grpc else "http"), f"{u.hostname}:{port}", u.scheme in ("https", "grpcs")


class TritonBackend:
    name = "triton"

    def __init__(self, bundle: Bundle, precision: str = "fp32", url: str | None = None, timeout: float = 10.0,
                 prefix: str = PREFIX):
        self.protocol, self.address, self.ssl = parse_url(url or "")
        self.module = require(f"tritonclient.{self.protocol}")
        self.utils = require("tritonclient.utils")
        self.url, self.precision, self.timeout, self.prefix = url, precision, float(timeout), prefix
        self.bundle = bundle
        self._local = threading.local()            # one client per thread (the HTTP client is not thread-safe)
        self._clients: list = []
        self._lock = threading.Lock()
        self.outputs = {s: [t.name for t in bundle.stages[s].outputs] for s in STAGES}
        self.max_batch: dict[str, int] = {}
        self.chains: set[str] = set()
        try:
            self._check_server()
        except BaseException:
            self.close()
            raise

    # -- opening: server, models, versions
    def _client(self):
        c = getattr(self._local, "client", None)
        if c is None:
            if self.protocol == "http":
                c = self.module.InferenceServerClient(self.address, ssl=self.ssl, connection_timeout=self.timeout,
                                                      network_timeout=self.timeout)
            else:
                c = self.module.InferenceServerClient(self.address, ssl=self.ssl)
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def _call(self, what: str, fn, *args, **kw):
        if self.protocol == "grpc":
            kw["client_timeout"] = self.timeout
        where = f"Triton at {self.url}: {what}"
        down = "is the server up? (avgn-edge triton-local REPO, or check --triton-url)"
        try:
            return fn(*args, **kw)
        except self.utils.InferenceServerException as exc:
            status, text = str(exc.status() or ""), " ".join(str(exc.message() or exc).split())[:240]
            if "DEADLINE_EXCEEDED" in status:
                raise BackendError(f"{where} timed out after {self.timeout:g} s") from None
            if "UNAVAILABLE" in status:
                raise BackendError(f"{where} failed: the server is unreachable ({text})", hint=down) from None
            raise BackendError(f"{where} failed: {text}") from None
        except TimeoutError:
            raise BackendError(f"{where} timed out after {self.timeout:g} s") from None
        except Exception as exc:                   # the network under the HTTP client: refused, reset, cut short
            raise BackendError(f"{where} failed: the server is unreachable ({_reason(exc)})", hint=down) from None
        except BaseException as exc:               # gevent.Timeout derives from BaseException
            if type(exc).__name__ != "Timeout":
                raise
            raise BackendError(f"{where} timed out after {self.timeout:g} s") from None

    def _check_server(self):
        c = self._client()
        if not self._call("the health check", c.is_server_live):
            raise BackendError(f"Triton at {self.url} is not live")
        for stage in STAGES:
            name = model_name(self.prefix, stage)
            if not self._call(f"{name} readiness", c.is_model_ready, name):
                raise BackendError(f"Triton at {self.url} has no ready model {name!r}",
                                   hint="export the repository (avgn-edge export-triton BUNDLE --out REPO) and "
                                        "check the server log for why it did not load")
            cfg = self._config(name)
            self._check_model(stage, name, cfg)
            self.max_batch[stage] = int(cfg.get("max_batch_size", 0)) or 1
        for chain in CHAINS:
            name = model_name(self.prefix, chain)
            if self._call(f"{name} readiness", c.is_model_ready, name):
                self.chains.add(chain)
        log.info("Triton at %s (%s): %d stage models, ensembles %s", self.url, self.protocol, len(STAGES),
                 ", ".join(sorted(self.chains)) or "none")

    def _config(self, name: str) -> dict:
        c = self._client()
        if self.protocol == "grpc":
            return self._call(f"{name} config", c.get_model_config, name, as_json=True).get("config", {})
        return self._call(f"{name} config", c.get_model_config, name)

    def _check_model(self, stage: str, name: str, cfg: dict):
        rel = self.bundle.variants[self.precision]["files"][stage]
        want = self.bundle.files[rel]
        have = cfg.get("parameters", {}).get(SHA256, {}).get("string_value")
        hint = ("export the repository from this bundle and precision (avgn-edge export-triton BUNDLE --precision "
                f"{self.precision}), or run with the bundle the server was made from")
        if have is not None and have != want:
            raise BackendError(f"version mismatch: Triton's {name} runs another graph than this bundle's {rel} "
                               f"(sha256 {have[:12]}… on the server, {want[:12]}… here)", hint=hint)
        spec = self.bundle.stages[stage]
        for kind, tensors in (("input", spec.inputs), ("output", spec.outputs)):
            served = {t["name"]: (_TYPES.get(t.get("data_type"), t.get("data_type")), [int(d) for d in t["dims"]])
                      for t in cfg.get(kind, [])}
            for t in tensors:
                if served.get(t.name) != (t.dtype, list(t.shape[1:])):
                    raise BackendError(f"version mismatch: Triton's {name} {kind} {t.name} is {served.get(t.name)}, "
                                       f"this bundle's is {(t.dtype, list(t.shape[1:]))}", hint=hint)
        if have is None:
            log.warning("Triton's %s carries no %s parameter: its tensors match, its weights cannot be checked",
                        name, SHA256)

    # -- calls
    def _infer(self, model: str, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        m, c = self.module, self._client()
        inputs = []
        for k, v in feeds.items():
            v = np.ascontiguousarray(v)
            t = m.InferInput(k, list(v.shape), self.utils.np_to_triton_dtype(v.dtype))
            t.set_data_from_numpy(v)
            inputs.append(t)
        result = self._call(f"{model} inference", c.infer, model, inputs,
                            outputs=[m.InferRequestedOutput(n) for n in outputs])
        return {n: result.as_numpy(n) for n in outputs}

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._infer(model_name(self.prefix, stage), feeds, self.outputs[stage])

    def run_chain(self, chain: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request to the chain's ensemble (only where ``chain in self.chains``)."""
        inputs, outputs = chain_io(self.bundle.stages, chain)
        return self._infer(model_name(self.prefix, chain), {t.name: feeds[t.name] for t in inputs},
                           [t.name for t in outputs])

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            try:
                c.close()
            except Exception:                      # closing a client of a server gone away
                pass
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _reason(exc) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
