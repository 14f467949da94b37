"""The HTTP host both online front ends use: ``ApiServer`` (aiohttp on its own thread and event loop)
and ``guard_for``, the middleware of every app of ours (the bearer-token rule; every error as JSON).

serve's API (serve/api.py) and the web view (sinks/web.py, also ``live --web``) are apps on it.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import json
import logging
import socket
import threading

from ..errors import AvgnError, ConfigError

log = logging.getLogger("avgn_edge.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# standard JSON only (no NaN/Infinity, which strict parsers refuse): every JSON answer of ours uses it
strict_dumps = functools.partial(json.dumps, allow_nan=False)

CHANGING = ("POST", "PUT", "PATCH", "DELETE")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' blob: data:; media-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",            # the page's URL may carry ?token=
    "X-Content-Type-Options": "nosniff",
}


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")       # headers that are not UTF-8 compare, never raise


def authorized(request, token: str | None) -> bool:
    if not token or request.path.startswith("/health/"):
        return True
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(_bytes(given), _bytes(f"Bearer {token}")):
        return True
    return hmac.compare_digest(_bytes(request.query.get("token", "")), _bytes(token))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def host_names(host: str | None, allowed: list | tuple = ()) -> set[str] | None:
    """The Host header names a server bound to ``host`` answers (DNS rebinding: a page's own name
    pointed at our address is refused); None: any (a wildcard bind without configured names)."""
    names = {h.lower().strip("[]") for h in allowed}
    if host in (None, "", "0.0.0.0", "::"):
        return names or None
    names.add(host.lower().strip("[]"))
    try:
        loop = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if loop:
        names |= {"localhost", "127.0.0.1", "::1"}
    return names


def _request_host(request) -> str | None:
    try:
        h = request.url.host
    except Exception:                       # a Host header yarl cannot parse
        return None
    return None if h is None else h.lower().strip("[]")


def cross_site(request, names: set[str] | None) -> str | None:
    """Why a request is refused as cross-site (DNS rebinding, CSRF), or None."""
    if request.path.startswith("/health/"):
        return None
    if names is not None and _request_host(request) not in names:
        return "this Host is not served (see api.allowed_hosts)"
    if request.method in CHANGING:
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site requests are refused"
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return "cross-origin requests are refused"
    return None


def harden(app):
    """The security headers on every answer of ``app`` (the page, its images, the API)."""
    async def headers(_request, response):
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
    app.on_response_prepare.append(headers)
    return app


def guard_for(token: str | None, host: str | None = None, allowed_hosts=()):
    """The middleware every app of ours uses: the token rule, Host and Origin checks, JSON bodies
    only, and every error as one line of JSON. ``host``: the bound address (the Host names it answers)."""
    from aiohttp import web
    names = host_names(host, allowed_hosts)

    def error(status: int, message: str):
        return web.json_response({"error": message}, status=status, dumps=strict_dumps)

    @web.middleware
    async def guard(request, handler):
        why = cross_site(request, names)
        if why is not None:
            return error(403, why)
        if not authorized(request, token):
            return web.json_response({"error": "missing or wrong API token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        if request.method in ("POST", "PUT", "PATCH") and not (
                request.content_type == "application/json" or request.content_type.endswith("+json")):
            return error(415, "the request body must be JSON (Content-Type: application/json)")
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, str(exc))
        except ConfigError as exc:
            return error(400, str(exc) + (f" ({exc.hint})" if exc.hint else ""))
        except AvgnError as exc:                  # a name that is gone: 404; a state that refuses it: 409
            return error(404 if isinstance(exc, LookupError) else 409, str(exc))
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
        self._sock: socket.socket | None = None

    def claim(self):
        """Bind the port now (before outputs open or anything is published): a taken port fails
        here with one line, and nothing of a running instance is touched."""
        if self._sock is not None:
            return
        try:
            infos = socket.getaddrinfo(self.host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, addr = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as aiohttp does (TIME_WAIT)
                sock.bind(addr)
                sock.listen(128)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise ConfigError(f"{self.setting}: cannot listen on {self.host}:{self.port} ({exc.strerror or exc})",
                              hint=f"choose another {self.setting}" + (f" (or {self.alternative})" if self.alternative else "")) from None
        sock.setblocking(False)
        self._sock, self.port = sock, sock.getsockname()[1]

    def start(self, timeout: float = 10.0):
        from aiohttp import web
        self.claim()
        started, failure = threading.Event(), []

        async def boot():
            self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                                         shutdown_timeout=1.0)        # open MJPEG streams: do not wait 60 s
            await self._runner.setup()
            site = web.SockSite(self._runner, self._sock)
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
        if self._thread is None and self._sock is not None:      # claimed, never served
            self._sock.close()
            self._sock = None
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
