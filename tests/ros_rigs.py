"""ROS 2 rigs: the client venv of PyPI's Jazzy wheels (``./dev clients``), vision_msgs' two messages
(tests/data/ros/vision_msgs) built once with the wheels' own rosidl generators and cached next to
the venv, and the environment a sourced ``setup.bash`` would give (for the node and for serve)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from client_rigs import ROS_VERSION, client_venv, clients_dir
from live_rigs import _unavailable

HERE = Path(__file__).resolve().parent
PKG = HERE / "data" / "ros" / "vision_msgs"
PYVER = f"python{sys.version_info[0]}.{sys.version_info[1]}"
# the wheels were built in manylinux's /opt/python: their exported CMake targets name its paths
WHEEL_PY_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
WHEEL_NUMPY_INCLUDE = "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"


def ros_venv() -> Path:
    return client_venv(f"ros-{ROS_VERSION}")


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / PYVER / "site-packages"


def _ros_prefix(venv: Path) -> Path:
    """Where the wheels put ROS's share/ and lib/ (the venv's prefix, or an opt/ under site-packages)."""
    for p in [venv, *sorted(site_packages(venv).glob("*/opt/ros/*"))]:
        if (p / "share" / "std_msgs").is_dir():
            return p
    found = sorted(site_packages(venv).rglob("share/std_msgs/package.xml"))
    if not found:
        _unavailable(f"no std_msgs share/ in {venv}: the ROS 2 wheels did not install as expected")
    return found[0].parents[2]


def _fix_cmake_paths(prefix: Path, venv: Path):
    """Point the wheels' CMake exports at this machine's Python headers and the venv's numpy."""
    numpy = subprocess.run([str(venv / "bin" / "python"), "-c", "import numpy; print(numpy.get_include())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    for f in (prefix / "share").glob("*/cmake/*.cmake"):
        text = f.read_text(errors="surrogateescape")
        new = text.replace(WHEEL_NUMPY_INCLUDE, numpy).replace(WHEEL_PY_INCLUDE, sysconfig.get_paths()["include"])
        if new != text:
            f.write_text(new, errors="surrogateescape")


def vision_msgs(timeout: float = 900.0) -> tuple[Path, Path]:
    """(the ROS venv, the vision_msgs install prefix), built once per message set and ROS version."""
    venv = ros_venv()
    if shutil.which("cmake") is None or shutil.which("make") is None:
        _unavailable("building vision_msgs needs cmake and make (apt-get install cmake make g++)")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(PKG.rglob("*")) if p.is_file())).hexdigest()[:12]
    out = clients_dir() / f"vision_msgs-4.1.1-{ROS_VERSION}-{digest}"
    with open(f"{out}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)                    # parallel test runs build it once
        if (out / ".ready").is_file():
            return venv, out / "install"
        shutil.rmtree(out, ignore_errors=True)
        (out / "build").mkdir(parents=True)
        prefix = _ros_prefix(venv)
        _fix_cmake_paths(prefix, venv)
        env = ros_env(venv, None)
        env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
        log = open(out / "build.log", "w")
        for cmd in (["cmake", str(PKG), f"-DCMAKE_INSTALL_PREFIX={out / 'install'}", "-DBUILD_TESTING=OFF",
                     f"-DCMAKE_PREFIX_PATH={prefix}", f"-DPython3_EXECUTABLE={venv / 'bin' / 'python'}"],
                    ["make", "-j2"], ["make", "install"]):
            r = subprocess.run(cmd, cwd=out / "build", env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            if r.returncode != 0:
                log.close()
                _unavailable(f"building vision_msgs failed at {cmd[0]} {cmd[1]}: "
                             + (out / "build.log").read_text(errors="replace")[-1500:])
        log.close()
        (out / ".ready").write_text(digest)
        return venv, out / "install"


def ros_env(venv: Path, install: Path | None, **extra) -> dict[str, str]:
    """What ``source setup.bash`` of the wheels plus the vision_msgs overlay would set."""
    prefix = _ros_prefix(venv)
    env = dict(os.environ)
    prefixes = [str(p) for p in (install, prefix) if p is not None]
    libs = [str(Path(p) / "lib") for p in prefixes]
    libs += [str(p) for p in sorted(site_packages(venv).glob("ros_*.libs"))]   # the wheels' bundled libraries
    pys = [str(site_packages(Path(install)))] if install is not None else []
    env["AMENT_PREFIX_PATH"] = ":".join(prefixes)
    env["CMAKE_PREFIX_PATH"] = ":".join(prefixes)
    env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["PYTHONPATH"] = ":".join(pys + [env.get("PYTHONPATH", "")]).rstrip(":")
    env.update({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DISTRO": "jazzy", **extra})
    return env
