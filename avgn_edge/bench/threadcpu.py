"""CPU time per thread of this process (and of another process), from /proc, split by role.

The roles follow the OS thread names (io/threadname.py): a camera's ``demux …`` thread demuxes
and decodes picture and sound (FFmpeg's decoder workers, started from it, carry its name);
``avgn-scheduler`` runs every model call, and ``avgn-ort`` names ONNX Runtime's pool threads
(the bench loads the model under that name, see ``named_threads``); everything else (the
cameras' snippet threads, the main thread, outputs) is "other"."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..io.threadname import name_os_thread

ROLES = {"decode": ("demux",), "inference": ("avgn-scheduler", "avgn-ort")}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(stat_text: str) -> tuple[str, float]:
    """(comm, utime + stime in seconds) from a /proc/.../stat line (comm may hold spaces)."""
    head, _, rest = stat_text.rpartition(")")
    fields = rest.split()                   # fields[0] is the state (field 3)
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / _TICK


def thread_cpu(pid: int | str = "self") -> dict[int, tuple[str, float]]:
    """{thread id: (OS name, CPU seconds so far)}; threads that end while being read are skipped."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = _cpu_seconds((task / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
    return out


def process_cpu(pid: int | str = "self") -> float:
    """CPU seconds of the whole process so far (its ended threads included)."""
    return _cpu_seconds(Path(f"/proc/{pid}/stat").read_text())[1]


def role_of(name: str) -> str:
    return next((role for role, prefixes in ROLES.items() if name.startswith(prefixes)), "other")


def split_by_role(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds spent between two ``thread_cpu`` snapshots, per role (a thread born in between
    counts from zero; one that ended in between is lost: compare with ``process_cpu``)."""
    spent = dict.fromkeys((*ROLES, "other"), 0.0)
    for tid, (name, cpu) in after.items():
        spent[role_of(name)] += cpu - before.get(tid, (name, 0.0))[1]
    return spent


@contextlib.contextmanager
def named_threads(name: str):
    """Run the block with the calling thread's OS name set to ``name``, so that the native threads
    it starts (ONNX Runtime's pool) inherit it; the old name comes back after."""
    old = Path("/proc/thread-self/comm").read_text().strip() if Path("/proc/thread-self/comm").exists() else None
    name_os_thread(name)
    try:
        yield
    finally:
        if old is not None:
            name_os_thread(old)
