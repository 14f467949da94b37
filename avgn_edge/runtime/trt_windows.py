"""Each window's rings on the device, for the TensorRT pipeline (trt_pipeline.py).

A service runs many cameras through one pipeline, and a Recognizer's own window and a clip's
window are windows too: each host ring (``SnippetRing``, one per window) gets a
``DeviceWindow`` on first use: its T frames (sized for its frame size) and its mirrored feature
rings (kernels/ring.py). The pool holds only a weak reference to the host ring; once a window
is gone (a camera removed, a clip classified) its id is queued and its device memory freed on
the pipeline's next call, with the context current and the CUDA stream idle.

A window's ``serial`` changes whenever its device memory does (created, frames reallocated for
a new frame size): captured CUDA graphs name the windows they read by serial, and the serials
whose memory was freed are listed in ``retired`` until the pipeline drops those graphs.
(Not CUDA streams: those are the pipeline's own, one per backend.)
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np

from ..errors import InputError
from ..kernels.cuda_driver import DeviceMemory
from ..kernels.ring import DeviceRing


class DeviceWindow:
    def __init__(self, serial: int, rings: dict[str, DeviceRing]):
        self.serial = serial
        self.rings = rings                               # window tensor name -> mirrored feature ring
        self.frames: DeviceRing | None = None            # T frames of frame_shape (crop kernel input)
        self.frame_shape: tuple | None = None


class WindowPool:
    def __init__(self, mem: DeviceMemory, slots: int, item_bytes: dict[str, int]):
        self.mem, self.T, self.item_bytes = mem, slots, item_bytes
        self._windows: dict[int, DeviceWindow] = {}      # id(host ring) -> its device rings
        self._refs: dict[int, weakref.ref] = {}
        self._gone: list[int] = []                       # appended by weakref callbacks (any thread)
        self._serials = itertools.count()
        self.retired: list[int] = []                     # serials whose memory was freed

    def __len__(self) -> int:
        return len(self._windows)

    def get(self, ring) -> DeviceWindow:
        """The device rings of host ring ``ring``, made on first use."""
        key = id(ring)
        st = self._windows.get(key)
        if st is not None and self._refs[key]() is ring:
            return st
        if st is not None:                               # a dead ring's id reused before it was reaped
            self._free(key)
        rings = {name: DeviceRing(self.mem, self.T, size) for name, size in self.item_bytes.items()}
        st = self._windows[key] = DeviceWindow(next(self._serials), rings)
        self._refs[key] = weakref.ref(ring, lambda _, k=key: self._gone.append(k))
        return st

    def find(self, ring) -> DeviceWindow:
        key = id(ring)
        if key not in self._windows or self._refs[key]() is not ring:
            raise InputError("this window's snippets were not encoded by this pipeline")
        return self._windows[key]

    def frames_for(self, st: DeviceWindow, shape: tuple) -> None:
        """Make ``st``'s frame ring fit frames of ``shape`` (call with the CUDA stream idle)."""
        if st.frame_shape == shape:
            return
        if st.frames is not None:
            self.mem.free(st.frames.base)
            self.retired.append(st.serial)
        st.frames, st.frame_shape = None, None
        st.frames = DeviceRing(self.mem, self.T, int(np.prod(shape)), mirrored=False)
        st.frame_shape, st.serial = shape, next(self._serials)

    def reap(self) -> None:
        """Free the device rings of host rings that are gone (call with the CUDA stream idle)."""
        while self._gone:
            key = self._gone.pop()
            ref = self._refs.get(key)
            if ref is not None and ref() is None:
                self._free(key)

    def _free(self, key: int) -> None:
        st = self._windows.pop(key)
        del self._refs[key]
        for ring in list(st.rings.values()) + ([st.frames] if st.frames is not None else []):
            self.mem.free(ring.base)
        self.retired.append(st.serial)
