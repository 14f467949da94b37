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
view's page, images and stream). ``ApiServer`` also serves ``live --web``'s app.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading

from ..errors import AvgnError, ConfigError

log = logging.getLogger("avgn_edge.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def authorized(request, token: str | None) -> bool:
    if not token or request.path.startswith("/health/"):
        return True
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return hmac.compare_digest(request.query.get("token", "").encode(), token.encode())


def guard_for(token: str | None):
    """The middleware every app of ours uses: the token rule, and every error as JSON."""
    from aiohttp import web

    def error(status: int, message: str):
        return web.json_response({"error": message}, status=status)

    @web.middleware
    async def guard(request, handler):
        if not authorized(request, token):
            return web.json_response({"error": "missing or wrong API token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, str(exc))
        except ConfigError as exc:
            return error(400, str(exc) + (f" ({exc.hint})" if exc.hint else ""))
        except AvgnError as exc:
            return error(409, str(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, exc.reason)
        except Exception:                     # a bug: logged, answered, never fatal
            log.exception("API handler failed: %s %s", request.method, request.path)
            return error(500, "internal error (see the service log)")
    return guard


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


class ApiServer:
    """Runs ``make_app()`` on a private event loop in a thread; ``port`` is the bound one (0 -> a free port)."""

    def __init__(self, make_app, host: str, port: int, setting: str = "api.port", alternative: str = "--port"):
        self.make_app, self.host, self.port = make_app, host, port
        self.setting, self.alternative = setting, alternative          # named when the port is taken
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0):
        from aiohttp import web
        started, failure = threading.Event(), []

        async def boot():
            self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                                         shutdown_timeout=1.0)        # open MJPEG streams: do not wait 60 s
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = self._runner.addresses[0][1]

        def run():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(boot())
            except OSError as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="avgn-api", daemon=True)
        self._thread.start()
        started.wait(timeout)
        if failure:
            why = failure[0].strerror or failure[0]
            raise ConfigError(f"{self.setting}: cannot listen on {self.host}:{self.port} ({why})",
                              hint=f"choose another {self.setting}" + (f" (or {self.alternative})" if self.alternative else ""))

    def stop(self, timeout: float = 3.0):
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
