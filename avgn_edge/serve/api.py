"""The HTTP API (aiohttp, on its own thread and event loop).

    GET    /health/live            200 while the process runs (no token needed)
    GET    /health/ready           200 when the model is loaded and the scheduler runs, else 503
    GET    /api/streams            every stream: name, source (redacted), status, counters
    POST   /api/streams            {"name": ..., "source": ..., other camera keys} -> 201
    GET    /api/streams/NAME       one stream
    PATCH  /api/streams/NAME       {"enabled": false} or {"detect": {"threshold": 0.7}} -> 200
    DELETE /api/streams/NAME       -> 200
    GET    /api/events             recent event records of all streams
    GET    /metrics                Prometheus text format

    GET    /  and /web/...         the live web view (avgn_edge/sinks/web.py)

Every error is JSON ``{"error": "..."}`` with a 4xx status (5xx only for a bug, logged); every
answer is standard JSON (no NaN/Infinity). Bodies must be ``Content-Type: application/json`` (415),
at most 64 KiB and 32 levels deep; the Host must be the bound address (or ``api.allowed_hosts``)
and a changing request's Origin our own (403): no cross-site or DNS-rebinding use.
With a token (always when bound off loopback) every request but the health probes needs
``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` (what a browser can send for the web
view's page, images and stream). The server and that guard are sinks/httphost.py's, which
``live --web`` uses too.
"""

from __future__ import annotations

import asyncio
import json
import logging

from ..sinks.httphost import ApiError, ApiServer, authorized, guard_for, harden, strict_dumps  # noqa: F401

log = logging.getLogger("avgn_edge.serve")


MAX_DEPTH = 32          # nesting of a request body (a camera's keys need 4)


def _no_constant(name: str):
    raise ValueError(f"{name} is not standard JSON")


def _depth_of_text(text: str) -> int:
    """The bracket nesting of a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            esc, in_str = (False, True) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def build_app(service, token: str | None, host: str | None = None, allowed_hosts=()):
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    def json_response(data, status: int = 200):
        return web.json_response(data, status=status, dumps=strict_dumps)

    async def body(request) -> dict:
        try:
            raw = await request.read()
            text = raw.decode(request.charset or "utf-8")
        except (LookupError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not text in its declared charset") from None
        if text.count("[") + text.count("{") > 4 * MAX_DEPTH and _depth_of_text(text) > MAX_DEPTH:
            raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON (standard JSON: no NaN or Infinity)") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def stream_or_404(name: str):
        st = service.get_stream(name)
        if st is None:
            raise ApiError(404, f"no stream named {name!r}")
        return st

    async def live(_):
        return json_response({"status": "alive"})

    async def ready(_):
        ok, why = service.readiness()
        return json_response({"status": "ready" if ok else "not ready", "reason": why}, status=200 if ok else 503)

    async def list_streams(_):
        return json_response({"streams": [st.info() for st in service.stream_list()]})

    async def get_stream(request):
        return json_response(stream_or_404(request.match_info["name"]).info())

    async def add_stream(request):
        data = await body(request)
        st = await asyncio.get_running_loop().run_in_executor(None, service.add_stream_from_request, data)
        return json_response(st.info(), status=201)

    async def patch_stream(request):
        st = stream_or_404(request.match_info["name"])
        data = await body(request)
        await asyncio.get_running_loop().run_in_executor(None, service.patch_stream, st.name, data)
        return json_response(st.info())

    async def delete_stream(request):
        st = stream_or_404(request.match_info["name"])
        await asyncio.get_running_loop().run_in_executor(None, service.remove_stream, st.name)
        return json_response({"deleted": st.name})

    async def events(_):
        return json_response({"events": service.recent_events()})

    async def metrics(_):
        data = await asyncio.get_running_loop().run_in_executor(None, generate_latest, service.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = harden(web.Application(middlewares=[guard_for(token, host, allowed_hosts)], client_max_size=64 * 1024))
    app.add_routes([web.get("/health/live", live), web.get("/health/ready", ready),
                    web.get("/api/streams", list_streams), web.post("/api/streams", add_stream),
                    web.get("/api/streams/{name}", get_stream), web.patch("/api/streams/{name}", patch_stream),
                    web.delete("/api/streams/{name}", delete_stream), web.get("/api/events", events),
                    web.get("/metrics", metrics)])
    if service.web is not None:
        from ..sinks.web import add_routes
        add_routes(app, service.web.sink)
    return app
