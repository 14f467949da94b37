"""Audio sources on the ``time.monotonic()`` clock shared with the video frames.

Every source answers ``window(t_end, n)``: the n mono float32 samples that end at
monotonic time ``t_end``, and ok=False when part of that span is missing (not captured
yet, overwritten, lost in an overflow); the missing part is zeros. A live loop that wants
the window of a frame that has just arrived passes ``timeout=`` to wait for the audio to
catch up (a microphone delivers a block some 20-40 ms after its first sample).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

import numpy as np

from ..deps import require
from ..errors import InputError, MissingDependency, SourceError
from .track import TrackAudio, _resample, _wait_until, array_render

__all__ = ["AudioSource", "Microphone", "TrackAudio", "array_render", "input_devices", "sounddevice"]


@runtime_checkable
class AudioSource(Protocol):
    rate: int

    def window(self, t_end: float, n: int, timeout: float = 0.0) -> tuple[np.ndarray, bool]: ...
    def available_until(self) -> float: ...
    @property
    def stats(self) -> dict: ...
    def close(self) -> None: ...


def sounddevice():
    """The sounddevice module; MissingDependency without it or without the PortAudio library."""
    try:
        return require("sounddevice")
    except MissingDependency:
        raise
    except OSError as exc:      # sounddevice imports but cannot load libportaudio
        raise MissingDependency(f"microphone capture needs the PortAudio library ({exc})",
                                hint="sudo apt install libportaudio2") from None


def input_devices() -> list[str]:
    sd = sounddevice()
    return [f"{i}: {d['name']} ({d['max_input_channels']} in)" for i, d in enumerate(sd.query_devices())
            if d["max_input_channels"] > 0]


class Microphone:
    """A sounddevice input stream whose callback only copies into a preallocated ring.

    Timestamps: each block's first sample is stamped ``time.monotonic()`` at callback
    entry minus (``time.currentTime - time.inputBufferAdcTime``), the capture delay that
    PortAudio reports for this block. Only that *difference* of PortAudio times is used, so
    PortAudio's own clock (CLOCK_REALTIME with Debian's 19.6 ALSA backend) never has to be
    mapped onto the monotonic one, and a late callback does not shift the stamp (the delay
    grows with it). Through PulseAudio a tone scheduled at a player's DAC time was stamped
    0-7 ms from it; stamping on arrival alone was 15-19 ms late. Host APIs that report no ADC time
    (0, or a delay outside [0, 1) s) fall back to arrival - block duration - stream latency.
    Sample index -> time: see ``_timeline`` (late stamps after a stall are corrected, lost
    samples show as gaps and windows across them are not ok).
    """

    META = 1024  # block records kept (>= ring duration / smallest block)

    def __init__(self, device=None, rate: int = 16000, blocksize: int | None = None,
                 latency="low", seconds: float = 8.0, capture_rate: int | None = None):
        sd = sounddevice()
        self.rate = int(rate)
        self.device_index, self.device_name = _pick_device(sd, device)
        info = sd.query_devices(self.device_index)
        # prefer mono at the requested rate; else e.g. a USB mic that only does 48 kHz stereo:
        # capture natively, mix down in the callback and resample on read
        self.native_rate, self.channels = self.rate, 1
        first = int(capture_rate or self.rate)
        for r, ch in ((first, 1), (first, 2), (int(info["default_samplerate"]), 1),
                      (int(info["default_samplerate"]), 2)):
            if ch <= info["max_input_channels"] and _settings_ok(sd, self.device_index, r, ch):
                self.native_rate, self.channels = r, ch
                break
        self._n = int(seconds * self.native_rate)
        self._ring = np.zeros(self._n, np.float32)
        self._mix = np.zeros(max(self._n // 4, 4096), np.float32)
        self._blk_idx = np.zeros(self.META, np.int64)
        self._blk_t = np.zeros(self.META, np.float64)
        self._blk_arr = np.zeros(self.META, np.float64)      # callback entry times
        self._blk_ovf = np.zeros(self.META, bool)
        self._written = 0               # samples ever written (published after the copy)
        self._blocks = 0
        self._overflows = self._gaps = 0
        self._counted = -1              # blocks up to this one were checked for gaps
        self._read_lock = threading.Lock()    # readers only; the callback never takes it
        bs = blocksize if blocksize is not None else self.native_rate // 50
        try:
            self._stream = sd.InputStream(device=self.device_index, samplerate=self.native_rate,
                                          blocksize=bs, channels=self.channels, dtype="float32",
                                          latency=latency, callback=self._callback)
        except Exception as exc:
            raise SourceError(f"cannot open microphone {self.device_name!r} at {self.native_rate} Hz: {exc}",
                              hint="input devices: " + "; ".join(input_devices())) from None
        self._fallback_lag = float(self._stream.latency)
        try:
            self._stream.start()
        except Exception as exc:
            self._stream.close()
            raise SourceError(f"cannot start microphone {self.device_name!r}: {exc}") from None

    # -- the callback runs on PortAudio's thread: no allocation of buffers, no locks, no I/O
    def _callback(self, indata, frames, t, status):
        now = time.monotonic()
        lag = t.currentTime - t.inputBufferAdcTime
        if not (t.inputBufferAdcTime > 0 and 0.0 <= lag < 1.0):
            lag = frames / self.native_rate + self._fallback_lag
        w, n, k = self._written, self._n, self._blocks % self.META
        if status.input_overflow:
            self._overflows += 1
        src = indata[:, 0]
        if self.channels > 1 and frames <= len(self._mix):
            src = np.mean(indata, axis=1, out=self._mix[:frames])
        for off in range(0, frames, n):                 # a block longer than the ring keeps its tail
            chunk = src[off:off + n]
            pos = (w + off) % n
            first = min(len(chunk), n - pos)
            self._ring[pos:pos + first] = chunk[:first]
            self._ring[:len(chunk) - first] = chunk[first:]
        self._blk_idx[k], self._blk_t[k], self._blk_arr[k] = w, now - lag, now
        self._blk_ovf[k] = bool(status.input_overflow) and self._blocks > 0
        self._blocks += 1
        self._written = w + frames

    # -- reader side
    def _timeline(self):
        """Snapshot of the retained blocks: sample index, anchor (monotonic time of sample 0)
        and whether samples were lost just before each block.

        A block's stamp can be too late - the backlog after a stall arrives in a burst whose
        reported delay misses it, so its stamps fall back block by block - but not too early,
        while lost samples shift every later anchor. So each block takes the minimum anchor
        of itself and the blocks that *arrived* within 0.5 s after it (a whole burst arrives
        at once, however long the stall): burst stamps are corrected, clock drift cannot bias
        it by more than 0.5 s worth, and a step up of more than 30 ms is a gap.
        """
        with self._read_lock:
            return self._timeline_locked()

    def _timeline_locked(self):
        blocks, written = self._blocks, self._written
        m = min(blocks, self.META)
        order = (blocks - m + np.arange(m)) % self.META
        bi, arr = self._blk_idx[order], self._blk_arr[order]
        a = _range_min(self._blk_t[order] - bi / self.native_rate,
                       np.searchsorted(arr, arr + 0.5, side="right"))
        gap = np.r_[False, np.diff(a) > 0.03] | self._blk_ovf[order]
        # count a gap once its block has 0.5 s of successors (its anchor is final then)
        absolute = blocks - m + np.arange(m)
        done = blocks - m + int(np.searchsorted(arr, arr[-1] - 0.5, side="right")) - 1
        new = (absolute > self._counted) & (absolute <= done) & gap
        self._gaps += int(new.sum())
        self._counted = max(self._counted, done)
        return written, bi, a, gap

    def available_until(self) -> float:
        if not self._blocks:
            return float("-inf")
        k = (self._blocks - 1) % self.META
        return float(self._blk_t[k] + (self._written - self._blk_idx[k]) / self.native_rate)

    def window(self, t_end: float, n: int, timeout: float = 0.0) -> tuple[np.ndarray, bool]:
        if n < 1:
            raise InputError(f"window length must be >= 1 sample, got {n}")
        _wait_until(self, t_end, timeout)
        if not self._blocks:
            return np.zeros(n, np.float32), False
        written, bi, a, gaps = self._timeline()
        r = self.native_rate
        nn = int(round(n * r / self.rate))
        out = np.zeros(nn, np.float32)
        bt = a + bi / r
        j = max(int(np.searchsorted(bt, t_end, side="right")) - 1, 0)
        stop = int(round((t_end - a[j]) * r))
        start = stop - nn
        lo_i, hi_i = max(start, written - self._n, int(bi[0])), min(stop, written)
        if hi_i > lo_i:
            out[lo_i - start:hi_i - start] = self._ring[np.arange(lo_i, hi_i) % self._n]
            lost = self._written - self._n - lo_i      # overwritten by the callback while copying
            if lost > 0:
                out[:lo_i - start + lost] = 0.0
                lo_i = -1
        prev_end = np.r_[-np.inf, bt[:-1] + np.diff(bi) / r]
        gap = bool(np.any(gaps & (prev_end < t_end) & (bt > t_end - nn / r)))
        ok = lo_i == start and hi_i == stop and not gap
        return (out if nn == n else _resample(out, n)), ok

    @property
    def stats(self) -> dict:
        if self._blocks:
            self._timeline()
        return {"overflows": self._overflows, "gaps": self._gaps, "samples": self._written,
                "rate": self.rate, "native_rate": self.native_rate, "device": self.device_name}

    def close(self):
        if self._stream is not None:
            self._stream.abort()
            self._stream.close()
            self._stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _range_min(a: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """out[i] = min(a[i:stop[i]]) for stop[i] > i, by a sparse table (vectorised)."""
    n = len(a)
    table = [a]
    while (2 << (len(table) - 1)) <= n:
        h = 1 << (len(table) - 1)
        table.append(np.r_[np.minimum(table[-1][:-h], table[-1][h:]), np.full(h, np.inf)])
    table = np.stack(table)
    i = np.arange(n)
    length = np.maximum(np.minimum(stop, n) - i, 1)
    lvl = np.floor(np.log2(length)).astype(np.int64)
    return np.minimum(table[lvl, i], table[lvl, i + length - (1 << lvl)])


def _settings_ok(sd, device: int, rate: int, channels: int) -> bool:
    try:
        sd.check_input_settings(device, channels=channels, samplerate=rate)
        return True
    except Exception:
        return False


def _pick_device(sd, device) -> tuple[int, str]:
    devices = list(sd.query_devices())
    inputs = [i for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    listing = "input devices: " + ("; ".join(input_devices()) if inputs else "none (no sound server or card?)")
    if device is None:
        idx = sd.default.device[0]
        if idx is None or idx < 0:
            if not inputs:
                raise SourceError("no audio input device", hint=listing)
            idx = inputs[0]
    elif isinstance(device, (int, np.integer)) or (isinstance(device, str) and device.isdigit()):
        idx = int(device)
        if idx not in inputs:
            raise SourceError(f"audio device {idx} is not an input device", hint=listing)
    else:
        hits = [i for i in inputs if str(device).lower() in devices[i]["name"].lower()]
        exact = [i for i in hits if devices[i]["name"].lower() == str(device).lower()]
        if not hits:
            raise SourceError(f"no audio input device matching {device!r}", hint=listing)
        idx = (exact or hits)[0]
    return int(idx), devices[idx]["name"]
