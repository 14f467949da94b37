"""The HTTP host both online front ends use: ``ApiServer`` (aiohttp on its own thread and event loop)
and ``guard_for``, the middleware of every app of ours (the bearer-token rule; every error as JSON).

serve's API (serve/api.py) and the web view (sinks/web.py, also ``live --web``) are apps on it.
"""

from __future__ import annotations

import asyncio
import hmac
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
