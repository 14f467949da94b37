"""Rings in device memory: the last T snippets' frames and glance features, on the GPU.

A *mirrored* ring keeps snippet n in slot n % T and again in slot n % T + T, so the window of
the last T snippets is always contiguous, starting at slot (n - T + 1) % T: decide and head
read it in place. TensorRT binds only 256-byte aligned addresses, so a window start is
bindable only when a slot's size is a multiple of 256 (``direct``); otherwise an engine writes
into an aligned buffer that is copied into the ring, and a window is copied out into an
aligned buffer before it is read (a few KiB, device to device, in stream order).

The frame ring (``mirrored=False``) is read by the crop kernel, which wraps around itself.
"""

from __future__ import annotations

from .cuda_driver import ALIGN, DeviceMemory, check, driver


class DeviceRing:
    def __init__(self, mem: DeviceMemory, slots: int, item_bytes: int, mirrored: bool = True):
        self.driver, self.T, self.item, self.mirrored = driver(), int(slots), int(item_bytes), mirrored
        self.base = mem.alloc((2 if mirrored else 1) * self.T * self.item)
        self.direct = self.item % ALIGN == 0

    def slot(self, n: int) -> int:
        """Address of snippet n's slot (its first copy)."""
        return self.base + (n % self.T) * self.item

    def window(self, start: int) -> int:
        """Address of the T contiguous slots start, start + 1, ... (mirrored rings only)."""
        assert self.mirrored
        return self.base + (start % self.T) * self.item

    def write(self, n: int, src: int, stream) -> None:
        """Copy one item from device memory ``src`` into snippet n's slot (and its mirror)."""
        check(self.driver.cuMemcpyDtoDAsync(self.slot(n), src, self.item, stream))
        if self.mirrored:
            self.mirror(n, stream)

    def mirror(self, n: int, stream) -> None:
        """Copy snippet n's slot into its mirror slot (after something wrote the slot in place)."""
        check(self.driver.cuMemcpyDtoDAsync(self.slot(n) + self.T * self.item, self.slot(n), self.item, stream))

    def read_window(self, start: int, dst: int, stream) -> None:
        """Copy the window from ``start`` into ``dst`` (T items, contiguous)."""
        check(self.driver.cuMemcpyDtoDAsync(dst, self.window(start), self.T * self.item, stream))
