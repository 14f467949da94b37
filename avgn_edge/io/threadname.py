"""OS names for the pipeline's threads, so that per-thread tools (top -H, /proc/*/task/*/comm, the
bench's CPU split by role) can tell a camera's demux thread from the scheduler. Python (before 3.14)
keeps ``Thread.name`` to itself; threads that native libraries start from a named thread (FFmpeg's
decoder workers, ONNX Runtime's pool) inherit the name."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

_PR_SET_NAME = 15
_libc = None


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread an OS name (Linux keeps 15 bytes); ``None``: its Python name. A no-op
    where prctl is missing: the name is a label for tools, never needed to run."""
    global _libc
    if not sys.platform.startswith("linux"):
        return
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        raw = (name if name is not None else threading.current_thread().name).encode("utf-8", "replace")[:15]
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0)
    except (OSError, AttributeError):
        pass
