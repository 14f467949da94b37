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

Every error is JSON ``{"error": "..."}`` with a 4xx status (5xx only for a bug, logged).
With a token (always when bound off loopback) every request but the health probes needs
``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` (what a browser can send for the web
view's page, images and stream). The server and that guard are sinks/httphost.py's, which
``live --web`` uses too.
"""

from __future__ import annotations

import asyncio
import json
import logging

from ..sinks.httphost import ApiError, ApiServer, authorized, guard_for  # noqa: F401  (re-exported)

log = logging.getLogger("avgn_edge.serve")


def build_app(service, token: str | None):
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def body(request) -> dict:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def stream_or_404(name: str):
        st = service.get_stream(name)
        if st is None:
            raise ApiError(404, f"no stream named {name!r}")
        return st

    async def live(_):
        return web.json_response({"status": "alive"})

    async def ready(_):
        ok, why = service.readiness()
        return web.json_response({"status": "ready" if ok else "not ready", "reason": why}, status=200 if ok else 503)

    async def list_streams(_):
        return web.json_response({"streams": [st.info() for st in service.stream_list()]})

    async def get_stream(request):
        return web.json_response(stream_or_404(request.match_info["name"]).info())

    async def add_stream(request):
        data = await body(request)
        st = await asyncio.get_running_loop().run_in_executor(None, service.add_stream_from_request, data)
        return web.json_response(st.info(), status=201)

    async def patch_stream(request):
        st = stream_or_404(request.match_info["name"])
        data = await body(request)
        await asyncio.get_running_loop().run_in_executor(None, service.patch_stream, st.name, data)
        return web.json_response(st.info())

    async def delete_stream(request):
        st = stream_or_404(request.match_info["name"])
        await asyncio.get_running_loop().run_in_executor(None, service.remove_stream, st.name)
        return web.json_response({"deleted": st.name})

    async def events(_):
        return web.json_response({"events": service.recent_events()})

    async def metrics(_):
        data = await asyncio.get_running_loop().run_in_executor(None, generate_latest, service.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(middlewares=[guard_for(token)], client_max_size=64 * 1024)
    app.add_routes([web.get("/health/live", live), web.get("/health/ready", ready),
                    web.get("/api/streams", list_streams), web.post("/api/streams", add_stream),
                    web.get("/api/streams/{name}", get_stream), web.patch("/api/streams/{name}", patch_stream),
                    web.delete("/api/streams/{name}", delete_stream), web.get("/api/events", events),
                    web.get("/metrics", metrics)])
    if service.web is not None:
        from ..sinks.web import add_routes
        add_routes(app, service.web.sink)
    return app
