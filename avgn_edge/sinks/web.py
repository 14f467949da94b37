"""The live web view: what the recognizer sees and hears, and why it fired.

``WebView`` is a sink that keeps, per camera, the latest frame, decision, audio level and the
recent events (references only: nothing is encoded until a browser asks). ``add_routes``
puts the page and its data on an aiohttp app (serve's API app, or ``live --web``'s own):

    GET /                                the page (web_page.html)
    GET /web/cameras                     ["front", ...]
    GET /web/{camera}/stream.mjpeg       the annotated stream (multipart/x-mixed-replace: any browser)
    GET /web/{camera}/frame.jpg          one annotated frame
    GET /web/{camera}/state              top labels, audio level, saliency, chosen patches, open and recent events
    GET /web/media/{camera}/{label}/{f}  an event's clip (.mp4) or snapshot (.jpg): only files the clip sink
                                         wrote (listed in the camera's index, sinks/clips.py)

The token rules are the API's (serve/api.py): browsers pass it as ``?token=`` (an <img> sends
no headers); the page forwards the one it was opened with.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from importlib import resources
from pathlib import Path

import numpy as np

from .base import Sink
from .clips import ClipIndex
from .mqtt import audio_level
from .records import message, safe

MJPEG_FPS = 10.0


class _Camera:
    def __init__(self):
        self.frame = self.result = None
        self.t = 0.0
        self.version = 0
        self.jpeg: tuple[int, bytes] | None = None
        self.level = None
        self.active: dict[str, dict] = {}
        self.events: deque = deque(maxlen=30)


class WebView(Sink):
    name = "web"
    wants_frames = True
    audio_of = None          # serve sets it: camera -> which audio it has and its gaps (serve/camera.py: Camera.audio_info)

    def __init__(self, media=None, top: int = 5):
        """``media(camera)``: the camera's clip/snapshot names (records.Media) or None."""
        self.media, self.top = media or (lambda camera: None), top
        self.cams: dict[str, _Camera] = {}
        self._lock = threading.Lock()
        self.closed = False

    def _cam(self, camera: str) -> _Camera:
        with self._lock:
            return self.cams.setdefault(camera, _Camera())

    def frame(self, camera, frame, audio, t):
        c = self._cam(camera)
        c.frame, c.t = frame, t
        c.version += 1
        if audio is not None and len(audio):
            c.level = audio_level(audio)

    def decision(self, camera, result):
        self._cam(camera).result = result

    def event(self, camera, tr):
        c = self._cam(camera)
        rec = message(tr, self.media(camera))["after"]
        with self._lock:                              # the HTTP threads copy these under the same lock
            if tr.type == "end":
                c.active.pop(tr.label, None)
            else:
                c.active[tr.label] = rec
            c.events.appendleft({"type": tr.type, **rec})

    def add_camera(self, camera: str):
        """Listed before its first frame (serve adds each stream's camera at once)."""
        self._cam(camera)

    def forget(self, camera: str):
        with self._lock:
            self.cams.pop(camera, None)

    # -- read by the HTTP handlers (any thread)
    def cameras(self) -> list[str]:
        with self._lock:
            return list(self.cams)

    def jpeg(self, camera: str) -> tuple[int, bytes] | None:
        """(frame version, annotated JPEG) of the camera's latest frame, encoded once per frame."""
        import cv2

        from .overlay import draw
        c = self.cams.get(camera)
        if c is None or c.frame is None:
            return None
        cached = c.jpeg
        if cached is not None and cached[0] == c.version:
            return cached
        version, frame, result = c.version, c.frame, c.result
        with self._lock:
            active = list(c.active)
        img = draw(frame, result, events=active)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
        c.jpeg = (version, buf.tobytes()) if ok else None
        return c.jpeg

    def state(self, camera: str) -> dict | None:
        c = self.cams.get(camera)
        if c is None:
            return None
        r = c.result
        with self._lock:                              # a copy: the sink's thread appends meanwhile
            active, events = list(c.active.values()), list(c.events)
        out = {"camera": camera, "t": round(c.t, 3), "frames": c.version, "top": [], "saliency": [], "selected": [],
               "boxes": [], "audio": None, "active": active, "events": [self._links(camera, e) for e in events]}
        if c.level is not None:
            out["audio"] = {"rms": round(c.level[0], 1), "dBFS": round(c.level[1], 1)}
        if self.audio_of is not None:
            out["audio_source"] = self.audio_of(camera)
        if r is not None:
            sal = np.exp(r.saliency - r.saliency.max())
            out.update(top=[{"label": l, "score": round(s, 4)} for l, s in r.top(self.top)],
                       saliency=[round(float(x), 4) for x in sal / sal.sum()],
                       snippet_ages=[round(float(r.t - x), 3) for x in r.timestamps],
                       selected=[int(i) for i in r.indices], boxes=[[round(float(v), 1) for v in b] for b in r.boxes],
                       carried=getattr(r, "carried", None))
        return out

    @staticmethod
    def _links(camera: str, rec: dict) -> dict:
        """The record with the URLs of its clip and snapshot, for the files that exist (now)."""
        out = dict(rec)
        for kind in ("clip", "snapshot"):
            path = rec.get(kind)
            if path and Path(path).is_file():
                out[f"{kind}_url"] = f"/web/media/{camera}/{safe(rec['label'])}/{Path(path).name}"
        return out

    def close(self):
        self.closed = True


def page() -> bytes:
    return resources.files("avgn_edge.sinks").joinpath("web_page.html").read_bytes()


def web_app(view: WebView, token: str | None = None, host: str | None = None):
    """An app with only the web view (``live --web``), under the API's token rule and Host check."""
    from aiohttp import web

    from .httphost import guard_for, harden
    app = harden(web.Application(middlewares=[guard_for(token, host)]))
    add_routes(app, view)
    return app


def add_routes(app, view: WebView):
    """The web view's routes on an aiohttp ``app`` (the auth middleware is the app's)."""
    from aiohttp import web

    def cam_or_404(request) -> str:
        name = request.match_info["camera"]
        if name not in view.cams:
            raise web.HTTPNotFound(reason=f"no camera named {name!r}")
        return name

    async def index(_):
        return web.Response(body=page(), content_type="text/html", charset="utf-8")

    async def cameras(_):
        return web.json_response({"cameras": view.cameras()})

    async def state(request):
        return web.json_response(view.state(cam_or_404(request)))

    async def frame(request):
        got = await asyncio.get_running_loop().run_in_executor(None, view.jpeg, cam_or_404(request))
        if got is None:
            raise web.HTTPServiceUnavailable(reason="no frame yet")
        return web.Response(body=got[1], content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def mjpeg(request):
        name, loop = cam_or_404(request), asyncio.get_running_loop()
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        sent = -1
        try:
            while not view.closed and name in view.cams:
                got = await loop.run_in_executor(None, view.jpeg, name)
                if got is not None and got[0] != sent:
                    sent = got[0]
                    await resp.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(got[1])
                                     + got[1] + b"\r\n")
                await asyncio.sleep(1.0 / MJPEG_FPS)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def media(request):
        cam, label, fname = (request.match_info[k] for k in ("camera", "label", "file"))
        m = view.media(cam) if cam in view.cams else None
        if m is None or fname != safe(fname) or not fname.endswith((".mp4", ".jpg")) or label in (".", ".."):
            raise web.HTTPNotFound(reason="no such clip")
        folder = m.root / safe(cam)
        path = folder / safe(label) / fname
        # only what this camera's clip sink wrote and indexed, never another file under the output root
        if not ClipIndex(folder).lists(f"{label}/{fname}") or path.is_symlink() or not path.is_file():
            raise web.HTTPNotFound(reason="no such clip (yet: a clip appears post_capture s after its event ended)")
        return web.FileResponse(path)

    app.add_routes([web.get("/", index), web.get("/web/cameras", cameras), web.get("/web/{camera}/state", state),
                    web.get("/web/{camera}/frame.jpg", frame), web.get("/web/{camera}/stream.mjpeg", mjpeg),
                    web.get("/web/media/{camera}/{label}/{file}", media)])
