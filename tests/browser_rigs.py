"""Headless Chromium (Debian's package) driven over the DevTools protocol with aiohttp's websocket
client: console errors, values read from the page, screenshots."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import urllib.request

from live_rigs import _unavailable
from serve_rigs import free_port, stop_process, wait_for


class Chromium:
    def __init__(self, width: int = 1200, height: int = 800):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            _unavailable("the web view test needs Chromium: apt-get install chromium")
        self.port, self.profile = free_port(), tempfile.mkdtemp(prefix="avgn-chromium-")
        self.proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--disable-dev-shm-usage", f"--remote-debugging-port={self.port}",
                                      "--remote-debugging-address=127.0.0.1", f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.errors: list[str] = []
        self._id = 0
        self.loop = asyncio.new_event_loop()
        ws = wait_for(self._target, 30, 0.2, "Chromium's DevTools endpoint")
        self.loop.run_until_complete(self._connect(ws))

    def _target(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
        except OSError:
            return None
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    async def _connect(self, url):
        import aiohttp
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            await self._call(method)

    def _note(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            self.errors.append(p["exceptionDetails"].get("exception", {}).get("description", "exception"))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.errors.append(p["entry"].get("text", "") + " " + p["entry"].get("url", ""))

    async def _call(self, method, **params):
        self._id += 1
        me = self._id
        await self.ws.send_str(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads((await asyncio.wait_for(self.ws.receive(), 30)).data)
            if msg.get("id") == me:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._note(msg)

    def call(self, method, **params):
        return self.loop.run_until_complete(self._call(method, **params))

    def pump(self, seconds: float):
        """Let the page run (and collect its console messages) for ``seconds``."""
        async def drain():
            end = self.loop.time() + seconds
            while self.loop.time() < end:
                try:
                    msg = await asyncio.wait_for(self.ws.receive(), max(0.01, end - self.loop.time()))
                except asyncio.TimeoutError:
                    return
                self._note(json.loads(msg.data))
        self.loop.run_until_complete(drain())

    def open(self, url: str):
        self.call("Page.navigate", url=url)
        self.pump(1.0)

    def eval(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        async def shut():
            await self.ws.close()
            await self.session.close()
        try:
            self.loop.run_until_complete(shut())
        finally:
            self.loop.close()
            stop_process(self.proc, 10)
            shutil.rmtree(self.profile, ignore_errors=True)
