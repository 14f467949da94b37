"""The snippet cache: decode every clip once, then read numpy memory-mapped arrays.

    CACHE/<geometry>-<key>/frames.npy  [N, T, C, S, S, 3] uint8
                           audio.npy   [N, T, C, n] float32
                           times.npy   [N, T] float32: snippet times, s from the first frame
                           state.npy   [N] uint8: 0 empty, 1 filled, 2 filled (no audio track), 3 undecodable
                           meta.json   what it was made from

The key hashes the model geometry (T, frame size, audio rate and window), the candidate
count C and every item (path, size, modification time, segment), so a changed dataset or
model gets a cache of its own and a stale one is never read. Rows are written by whoever
decodes them first (a DataLoader worker, any rank) - the content of a row is a pure function
of its item, so concurrent writers agree - and the state byte is written after the row.
The directory appears atomically (made under a temporary name, then renamed); its size is
checked against the free disk space before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

EMPTY, FILLED, SILENT, BAD = 0, 1, 2, 3


class SnippetCache:
    def __init__(self, root: str | Path, items, cfg, candidates: int = 1):
        self.n = len(items)
        T, S = cfg.num_snippets, cfg.frame_size
        self.frame_shape = (T, candidates, S, S, 3)
        self.audio_shape = (T, candidates, cfg.audio_samples)
        geometry = {"T": T, "frame": S, "rate": cfg.sample_rate, "window": cfg.audio_window, "C": candidates,
                    "times": 1}
        h = hashlib.sha256(json.dumps(geometry, sort_keys=True).encode())
        for it in items:
            st = it.path.stat()
            h.update(f"{it.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{it.start}|{it.end}\n".encode())
        self.root = Path(root)
        self.dir = self.root / f"T{T}-S{S}-C{candidates}-{h.hexdigest()[:16]}"
        self.meta = {"geometry": geometry, "items": self.n}
        if not (self.dir / "meta.json").is_file():
            self._create()
        self._arrays = None
        self._pid = None

    @property
    def nbytes(self) -> int:
        return self.n * (int(np.prod(self.frame_shape)) + 4 * int(np.prod(self.audio_shape)))

    def _create(self):
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.root).free
        except OSError as exc:
            raise InputError(f"cannot use {self.root} as a cache: {exc.strerror}") from None
        if self.nbytes > free:
            raise InputError(f"the snippet cache needs {self.nbytes / 2**30:.1f} GiB, {self.root} has "
                             f"{free / 2**30:.1f} GiB free", hint="point --cache at a larger disk, or train without it")
        tmp = self.root / f".{self.dir.name}.{os.getpid()}.tmp"
        tmp.mkdir()
        np.lib.format.open_memmap(tmp / "frames.npy", "w+", np.uint8, (self.n, *self.frame_shape))
        np.lib.format.open_memmap(tmp / "audio.npy", "w+", np.float32, (self.n, *self.audio_shape))
        np.lib.format.open_memmap(tmp / "times.npy", "w+", np.float32, (self.n, self.frame_shape[0]))
        np.save(tmp / "state.npy", np.zeros(self.n, np.uint8))
        (tmp / "meta.json").write_text(json.dumps(self.meta))
        try:
            os.rename(tmp, self.dir)
        except OSError:                # another process made it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("snippet cache %s (%.2f GiB when full)", self.dir, self.nbytes / 2**30)

    def _open(self):
        if self._arrays is None or self._pid != os.getpid():     # memory maps do not cross a fork safely
            self._arrays = tuple(np.load(self.dir / f, mmap_mode="r+")
                                 for f in ("frames.npy", "audio.npy", "times.npy", "state.npy"))
            self._pid = os.getpid()
        return self._arrays

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_arrays", "_pid")} | {"_arrays": None, "_pid": None}

    def state(self) -> np.ndarray:
        return np.array(self._open()[3])

    def get(self, k: int):
        """None (not yet decoded), False (undecodable) or (frames, audio, has_audio, times)."""
        frames, audio, times, state = self._open()
        s = int(state[k])
        if s == EMPTY:
            return None
        if s == BAD:
            return False
        return np.array(frames[k]), np.array(audio[k]), s == FILLED, np.array(times[k], np.float64)

    def put(self, k: int, frames: np.ndarray, audio: np.ndarray, has_audio: bool, times: np.ndarray):
        f, a, t, state = self._open()
        f[k], a[k], t[k] = frames, audio, times
        state[k] = FILLED if has_audio else SILENT

    def put_bad(self, k: int):
        self._open()[3][k] = BAD

    def flush(self):
        for arr in self._open():
            arr.flush()


class _Decode:
    """Map-style view that decodes (and caches) item indices[i], for DataLoader workers."""

    def __init__(self, clips, indices):
        self.clips, self.indices = clips, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        k = self.indices[i]
        self.clips.segments(k)
        return k


def fill(clips, workers: int = 1, rank: int = 0, world: int = 1, progress: bool = True,
         wait_s: float = 2.0) -> dict:
    """Decode this rank's share of the missing rows of ``clips.cache`` in DataLoader workers, then
    wait until every rank's share is there. Returns counts and the decode rate."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    cache = clips.cache
    todo = [k for k in np.flatnonzero(cache.state() == EMPTY) if k % world == rank]
    t0 = time.perf_counter()
    if todo:
        dl = DataLoader(_Decode(clips, todo), batch_size=None, num_workers=workers)
        for _ in tqdm(dl, total=len(todo), desc="decoding into the cache", disable=not progress,
                      dynamic_ncols=True, unit="clip"):
            pass
        cache.flush()
    seconds = time.perf_counter() - t0
    while world > 1 and (cache.state() == EMPTY).any():
        time.sleep(wait_s)             # the other ranks' shares (torchrun stops us if one of them dies)
    state = cache.state()
    return {"clips": int(len(state)), "decoded": len(todo), "decode_seconds": round(seconds, 2),
            "decode_clips_per_s": round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
            "undecodable": int((state == BAD).sum()), "no_audio": int((state == SILENT).sum())}
