"""Rigs of the #22 tests: raw HTTP requests (any header, any bytes) over a real socket."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit


def raw(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
        timeout: float = 15.0) -> tuple[int, dict, object]:
    """(status, headers, parsed JSON or text); header values may be bytes (not UTF-8 on the wire)."""
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, (json.loads(text) if "json" in hdrs.get("content-type", "") else text)
    finally:
        c.close()


def post_json(url: str, path: str, data, ctype: str = "application/json", **headers):
    return raw(url, "POST", path, json.dumps(data).encode(), {"Content-Type": ctype, **headers})
