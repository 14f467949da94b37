"""Emulated device memory and pinned host memory: two reserved anonymous mappings, sub-allocated.

Device addresses are real addresses of this process inside the *device arena*, so ONNX Runtime
(the emulated engines) and the host build of a kernel work on them in place; pinned host
memory (``cuMemHostAlloc``) comes from a second arena. Every other address is pageable host
memory. So an API can check that it got the kind of memory it documents.

Like the real driver: allocations are 512-byte aligned (TensorRT needs 256); a freed range is
unusable at once (the driver refuses it) and is filled with 0xFF (NaN for floats, -1 for ints),
so anything still reading it computes garbage; freed addresses are not handed out again until
the arena has been gone through once, and the quarantine of freed bytes is bounded (beyond it
the oldest ranges are returned to the OS, which reads them back as zeros).
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
from collections import deque
from dataclasses import dataclass

import numpy as np

ALIGN = 512
POISON = 0xFF
_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)      # Linux's value on x86-64 and aarch64
QUARANTINE_BYTES = 256 << 20


@dataclass
class Allocation:
    base: int
    size: int            # bytes asked for
    span: int            # bytes reserved (aligned)
    kind: str            # "device" or "pinned"
    owner: object = None  # what allocated it: a context, or a TensorRT execution context's scratch
    live: bool = True

    def covers(self, ptr: int, nbytes: int) -> bool:
        return self.base <= ptr and ptr + nbytes <= self.base + self.size


class Arena:
    """One reserved mapping and a bump allocator that reuses freed space only after wrapping."""

    def __init__(self, capacity: int, kind: str, reserve_factor: int = 2):
        self.kind, self.capacity = kind, int(capacity)
        self.reserved = self.capacity * reserve_factor
        self.mm = mmap.mmap(-1, self.reserved, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _NORESERVE,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._anchor = ctypes.c_char.from_buffer(self.mm)          # keeps the mapping exported, never closed
        self.base = ctypes.addressof(self._anchor)
        self.end = self.base + self.reserved
        self.used = 0                                               # live bytes (spans)
        self._bump = 0
        self._starts: list[int] = []                                # sorted bases of live allocations
        self._live: dict[int, Allocation] = {}
        self._quarantine: deque[Allocation] = deque()
        self._quarantined = 0
        self._released: list[tuple[int, int]] = []                  # (offset, span) free for reuse
        self.freed_recently: dict[int, Allocation] = {}             # base -> freed allocation (for messages)

    # -- allocation
    def alloc(self, nbytes: int, owner=None) -> Allocation | None:
        span = max(ALIGN, -(-int(nbytes) // ALIGN) * ALIGN)
        if self.used + span > self.capacity:
            return None
        if self._bump + span <= self.reserved:
            offset = self._bump
            self._bump += span
        else:                                                       # wrapped: first fit in released space
            offset = self._reuse(span)
            if offset is None:
                return None
        a = Allocation(self.base + offset, int(nbytes), span, self.kind, owner)
        bisect.insort(self._starts, a.base)
        self._live[a.base] = a
        self.used += span
        return a

    def _reuse(self, span: int) -> int | None:
        for i, (off, free) in enumerate(self._released):
            if free >= span:
                self._released[i] = (off + span, free - span)
                return off
        return None

    def free(self, a: Allocation) -> None:
        del self._live[a.base]
        self._starts.remove(a.base)
        self.used -= a.span
        a.live = False
        self.view(a.base, a.span)[:] = POISON
        self.freed_recently[a.base] = a
        self._quarantine.append(a)
        self._quarantined += a.span
        while self._quarantined > QUARANTINE_BYTES:
            old = self._quarantine.popleft()
            self._quarantined -= old.span
            self.freed_recently.pop(old.base, None)
            offset = old.base - self.base
            lo, hi = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE, (offset + old.span) // mmap.PAGESIZE * mmap.PAGESIZE
            if hi > lo:                                             # give whole pages back (read as zeros)
                self.mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            self._released.append((offset, old.span))

    # -- lookup
    def contains(self, ptr: int) -> bool:
        return self.base <= ptr < self.end

    def find(self, ptr: int) -> Allocation | None:
        """The live allocation containing ``ptr``, or None."""
        i = bisect.bisect_right(self._starts, ptr) - 1
        if i < 0:
            return None
        a = self._live[self._starts[i]]
        return a if ptr < a.base + max(a.size, 1) else None

    def live(self) -> list[Allocation]:
        return list(self._live.values())

    def view(self, ptr: int, nbytes: int) -> np.ndarray:
        """A writable uint8 view of [ptr, ptr + nbytes) inside the arena."""
        return np.frombuffer(self.mm, np.uint8, int(nbytes), ptr - self.base)

    def poison_broken(self) -> list[Allocation]:
        """Freed ranges still in quarantine whose poison was overwritten: writes after free."""
        return [a for a in self._quarantine if int(self.view(a.base, a.span).min()) != POISON]


class Memory:
    """The device arena and the pinned host arena of the emulated device."""

    def __init__(self, device_bytes: int, pinned_bytes: int):
        self.device = Arena(device_bytes, "device")
        self.pinned = Arena(pinned_bytes, "pinned")

    def arena_of(self, ptr: int) -> Arena | None:
        return next((a for a in (self.device, self.pinned) if a.contains(ptr)), None)

    def device_range(self, ptr: int, nbytes: int) -> Allocation | None:
        """The live device allocation holding all of [ptr, ptr + nbytes), else None."""
        a = self.device.find(ptr)
        return a if a is not None and a.covers(ptr, nbytes) else None

    def accessible_range(self, ptr: int, nbytes: int) -> Allocation | None:
        """Device or pinned (mapped, unified addressing) memory a kernel may touch, else None."""
        for arena in (self.device, self.pinned):
            a = arena.find(ptr)
            if a is not None and a.covers(ptr, nbytes):
                return a
        return None

    def host_kind(self, ptr: int, nbytes: int) -> str:
        """'pinned', 'pageable', or 'invalid' (device memory, or freed/overrun pinned memory)."""
        if self.device.contains(ptr):
            return "invalid"
        if self.pinned.contains(ptr):
            a = self.pinned.find(ptr)
            return "pinned" if a is not None and a.covers(ptr, nbytes) else "invalid"
        return "pageable"

    def describe(self, ptr: int) -> str:
        """Where an address points, in words (for error messages and tests)."""
        for arena in (self.device, self.pinned):
            if arena.contains(ptr):
                a = arena.find(ptr)
                if a is not None:
                    return f"live {arena.kind} allocation {a.base:#x}+{ptr - a.base} of {a.size} B"
                if any(f.base <= ptr < f.base + f.span for f in arena.freed_recently.values()):
                    return f"freed {arena.kind} memory"
                return f"unallocated {arena.kind} memory"
        return "host memory outside the emulated device"
