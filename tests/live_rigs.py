"""Real capture rigs for the live tests (no mocks): a PulseAudio virtual microphone, a
pure-Python MJPEG-over-HTTP camera and a flash + beep clip. Plain pytest fixtures, to be
re-exported from conftest.py with ``from live_rigs import *``.

Facts behind them: shared/notes/capture.md. Both stimuli are scheduled on the shared
``time.monotonic()`` clock (CLOCK_MONOTONIC is system-wide on Linux): the MJPEG server
emits frame j at t0 + j / fps, and the player subprocess places audio sample 0 at the
instant its PortAudio stream reports as DAC time t0 — so a flash and its beep leave the
rigs together and the capture path alone decides how well they pair.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

__all__ = ["virtual_mic", "mjpeg_server", "flash_beep_clip", "VirtualMic", "Playback", "MJPEGServer",
           "write_flash_beep_clip", "stamp", "read_stamp", "stamp_rows"]

# ----------------------------------------------------------------------- pixel stamps
BLOCK = 8   # JPEG-aligned 8x8 black/white blocks survive any sane quality


def stamp(img: np.ndarray, index: int, t: float) -> np.ndarray:
    """Write index (uint32) and t (float64) as 96 black/white blocks along the top rows."""
    bits = np.unpackbits(np.frombuffer(struct.pack("<Id", index, t), np.uint8))
    per_row = img.shape[1] // BLOCK
    for k, b in enumerate(bits):
        y, x = divmod(k, per_row)
        img[y * BLOCK:(y + 1) * BLOCK, x * BLOCK:(x + 1) * BLOCK] = 255 if b else 0
    return img


def read_stamp(img: np.ndarray) -> tuple[int, float]:
    gray = img.mean(axis=2) if img.ndim == 3 else img
    per_row = img.shape[1] // BLOCK
    bits = []
    for k in range(96):
        y, x = divmod(k, per_row)
        c = gray[y * BLOCK + 2:(y + 1) * BLOCK - 2, x * BLOCK + 2:(x + 1) * BLOCK - 2]
        bits.append(c.mean() > 127)
    return struct.unpack("<Id", np.packbits(np.array(bits, np.uint8)).tobytes())


def stamp_rows(width: int) -> int:
    """Pixel rows used by the stamp (content below them is free)."""
    return -(-96 // (width // BLOCK)) * BLOCK


# ----------------------------------------------------------------------- MJPEG camera
class MJPEGServer:
    """multipart/x-mixed-replace JPEG stream on 127.0.0.1 with frames at t0 + j / fps."""

    def __init__(self, fps: float = 30.0, size: tuple[int, int] = (320, 240), quality: int = 85):
        self.fps, self.size, self.quality = fps, size, quality
        self.port = 0
        self._cond = threading.Condition()
        self._jpeg: tuple[int, float, bytes] | None = None
        self._render = self._default_render
        self._t0 = self._epoch = time.monotonic()
        self._index = -1
        self.log: list[tuple[int, float]] = []      # (index, producer time) of every frame made
        self._server = None
        self._running = threading.Event()
        self._conns: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def _default_render(self, t: float) -> np.ndarray:
        w, h = self.size
        img = np.full((h, w, 3), 90, np.uint8)
        x = int(t * 60) % w
        img[:, max(x - 8, 0):x + 8] = (40, 200, 60)       # a moving bar
        return img

    def show(self, render, t0: float):
        """Serve ``render(t - t0)`` (RGB HxWx3) at ticks aligned to t0 from now on."""
        with self._cond:
            self._render, self._t0 = render, t0

    def start(self):
        rig = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rig._conns.add(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                last = -1
                try:
                    while rig._running.is_set():
                        with rig._cond:
                            rig._cond.wait_for(lambda: not rig._running.is_set() or
                                               (rig._jpeg is not None and rig._jpeg[0] != last), 0.5)
                            item = rig._jpeg
                        if item is None or item[0] == last or not rig._running.is_set():
                            continue
                        last = item[0]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(item[2])).encode() + b"\r\n\r\n" + item[2] + b"\r\n")
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    rig._conns.discard(self.connection)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._running.set()
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._producer = threading.Thread(target=self._produce, daemon=True)
        self._producer.start()
        return self

    def _produce(self):
        import cv2
        while self._running.is_set():
            with self._cond:
                render, t0 = self._render, self._t0
            now = time.monotonic()
            j = int(np.floor((now - t0) * self.fps)) + 1          # next tick on t0's grid
            tick = t0 + j / self.fps
            time.sleep(max(tick - time.monotonic(), 0.0))
            if not self._running.is_set():
                break
            with self._cond:
                if (self._render, self._t0) != (render, t0):       # show() moved the grid: re-plan
                    continue
            img = np.ascontiguousarray(render(tick - t0))
            index = self._index = max(self._index + 1, int(round((tick - self._epoch) * self.fps)))
            t = time.monotonic()
            stamp(img, index, t)
            ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            with self._cond:
                self._jpeg = (index, t, buf.tobytes())
                self.log.append((index, t))
                self._cond.notify_all()

    def stop(self):
        """Drop the stream as a network failure would: listener and open connections close."""
        self._running.clear()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._producer.join(2)


@pytest.fixture
def mjpeg_server():
    srv = MJPEGServer().start()
    yield srv
    srv.stop()


# ----------------------------------------------------------------------- virtual microphone
_PLAYER = r"""
import sys, time, numpy as np, sounddevice as sd
sig = np.load(sys.argv[1]).astype(np.float32); rate = int(sys.argv[2])
t0 = [None]; pos = {"dropped": 0, "late": 0}
def cb(out, frames, t, status):
    now = time.monotonic()
    lead = t.outputBufferDacTime - t.currentTime
    dac = now + (lead if 0 <= lead < 1 else 0.05)
    out.fill(0)
    if status.output_underflow: pos["late"] += 1
    if t0[0] is None: return
    k0 = int(round((dac - t0[0]) * rate))
    a, b = max(0, -k0), min(frames, len(sig) - k0)
    if b > a: out[a:b, 0] = sig[k0 + a:k0 + b]
    if k0 > len(sig) + rate // 5: raise sd.CallbackStop
with sd.OutputStream(samplerate=rate, channels=1, dtype="float32", latency="high", callback=cb) as s:
    time.sleep(0.2)
    print("ready", flush=True)
    t0[0] = float(sys.stdin.readline())
    if t0[0] < time.monotonic() + 0.06: pos["dropped"] = 1   # asked too late for the output latency
    while s.active: time.sleep(0.02)
print("done", pos["dropped"], pos["late"], flush=True)
"""


class Playback:
    def __init__(self, proc: subprocess.Popen):
        self.proc, self.t0 = proc, None

    def start(self, at: float | None = None) -> "Playback":
        """Sample 0 reaches the sink at monotonic ``at`` (default: 0.15 s from now)."""
        self.t0 = time.monotonic() + 0.15 if at is None else at
        self.proc.stdin.write(f"{self.t0!r}\n")
        self.proc.stdin.flush()
        return self

    def wait(self, timeout: float = 20.0) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        return out.strip()


class VirtualMic:
    """A private PulseAudio daemon: null sink ``vmic_sink``, its monitor remapped as source
    ``vmic`` (the default input), and a silence loopback that keeps the sink running so a
    new recording stream gets audio at once (capture.md section 1)."""

    sink, source = "vmic_sink", "vmic"

    def __init__(self, workdir: str | os.PathLike):
        self.dir = Path(workdir)
        self.env = {"PULSE_SERVER": f"unix:{self.dir}/native", "PULSE_RUNTIME_PATH": str(self.dir / "runtime"),
                    "PULSE_STATE_PATH": str(self.dir / "state")}
        self.pid = None
        self._saved = {}

    def start(self) -> "VirtualMic":
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        d = self.dir
        subprocess.run(["pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--use-pid-file=yes",
                        f"--log-target=file:{d}/pulse.log",
                        f"--load=module-native-protocol-unix socket={d}/native auth-anonymous=1",
                        f"--load=module-null-sink sink_name={self.sink} rate=48000 channels=1",
                        f"--load=module-remap-source master={self.sink}.monitor source_name={self.source}",
                        "--load=module-null-source source_name=silence rate=48000 channels=1",
                        f"--load=module-loopback source=silence sink={self.sink} latency_msec=20 "
                        "source_dont_move=1 sink_dont_move=1"],
                       env=env, capture_output=True, text=True, timeout=30)
        if not (d / "runtime" / "pid").exists():
            log = (d / "pulse.log").read_text()[-2000:] if (d / "pulse.log").exists() else ""
            raise RuntimeError(f"pulseaudio did not start in {d}: {log}")
        self.pid = int((d / "runtime" / "pid").read_text().split()[0])
        try:
            for _ in range(100):
                if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            for cmd in (["pactl", "set-default-sink", self.sink], ["pactl", "set-default-source", self.source]):
                subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=10)
        except Exception:
            self.stop()
            raise
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        if "sounddevice" in sys.modules:     # PortAudio enumerated devices at import: re-scan
            sd = sys.modules["sounddevice"]
            sd._terminate()
            sd._initialize()
        time.sleep(2.2)                      # let the loopback settle (else first audio 1-2 s late)
        return self

    def player(self, signal: np.ndarray, rate: int) -> Playback:
        """A player subprocess, its output stream open and running; ``.start(at)`` plays."""
        fd, path = tempfile.mkstemp(suffix=".npy", dir=self.dir)
        os.close(fd)
        np.save(path, np.asarray(signal, np.float32))
        proc = subprocess.Popen([sys.executable, "-c", _PLAYER, path, str(rate)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env={**os.environ, **self.env, "PULSE_SINK": self.sink})
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            raise RuntimeError(f"player subprocess failed to start ({line!r})")
        return Playback(proc)

    def play(self, signal: np.ndarray, rate: int, at: float | None = None) -> Playback:
        return self.player(signal, rate).start(at)

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(40):
                if not Path(f"/proc/{self.pid}").exists() or "Z" in _proc_state(self.pid):
                    break
                time.sleep(0.05)
            self.pid = None
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _unavailable(reason: str):
    """Skip where the rig cannot exist; fail where it must (``./dev test`` installs it and sets
    AVGN_REQUIRE_RIGS=1, so a broken set-up cannot pass CI as a skip)."""
    if os.environ.get("AVGN_REQUIRE_RIGS") == "1":
        pytest.fail(reason + " (AVGN_REQUIRE_RIGS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory):
    missing = [p for p in ("pulseaudio", "pactl") if shutil.which(p) is None]
    if missing:
        _unavailable(f"virtual microphone needs {' and '.join(missing)}: "
                     "apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins")
    import ctypes.util
    import importlib.util
    if importlib.util.find_spec("sounddevice") is None or ctypes.util.find_library("portaudio") is None:
        _unavailable("microphone tests need sounddevice and PortAudio: pip install sounddevice; "
                     "apt-get install libportaudio2")
    mic = VirtualMic(tmp_path_factory.mktemp("vmic"))
    mic.start()
    yield mic
    mic.stop()


# ----------------------------------------------------------------------- flash + beep clip
def write_flash_beep_clip(path, flashes=(0.5, 1.5, 2.5), duration: float = 3.0, fps: int = 30,
                          size=(320, 240), rate: int = 48000, audio: bool = True, flash_len: float = 0.1):
    """An H.264 (+ AAC) MP4: dark textured frames, white during each flash; a 1 kHz beep
    (amplitude 0.5) over exactly the same spans."""
    from avgn_edge.media import write_video
    w, h = size
    rng = np.random.default_rng(0)
    base = rng.integers(20, 80, (h, w, 3)).astype(np.uint8)
    n = int(round(duration * fps))
    on = lambda t: any(f <= t + 1e-9 < f + flash_len for f in flashes)   # noqa: E731
    frames = [np.full((h, w, 3), 255, np.uint8) if on(j / fps) else base for j in range(n)]
    wave = None
    if audio:
        t = np.arange(int(duration * rate)) / rate
        gate = np.zeros(len(t), bool)
        for f in flashes:
            gate |= (t >= f) & (t < f + flash_len)
        wave = (0.5 * np.sin(2 * np.pi * 1000 * t) * gate).astype(np.float32)
    write_video(path, frames, fps, wave, sample_rate=rate)
    return SimpleNamespace(path=Path(path), flashes=list(flashes), flash_len=flash_len, duration=duration,
                           fps=fps, size=size, rate=rate)


@pytest.fixture(scope="session")
def flash_beep_clip(tmp_path_factory):
    return write_flash_beep_clip(tmp_path_factory.mktemp("clips") / "flash_beep.mp4")
