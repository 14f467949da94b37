"""The host builds of the project's kernels, as the emulated device runs them.

A kernel ``k`` of avgn_edge/kernels/*.cu has a host entry point ``host_k(const Params*, grid_x,
grid_y, block_x)`` (host_driver.h's HOST_LAUNCHER) in the library avgn_edge.kernels.host
builds with g++ from the same source. Before it runs, the parameters are checked as a device
would fault on them: every pointer field must be null or point into live device or pinned
memory covering what the kernel touches (``KERNEL_ARGS[k].touched``), and any other 8-byte
word that falls inside the device arena must point into a live allocation.
"""

from __future__ import annotations

import ctypes

from .api import CudaError, R
from .device import STATE


def runner(name: str, grid: tuple[int, int, int], block: tuple[int, int, int]):
    from ..kernels.host import load_host_library
    from ..kernels.launch import KERNEL_ARGS
    if name not in KERNEL_ARGS:
        raise NotImplementedError(f"the emulated GPU has no host build of kernel {name!r}")
    if grid[2] != 1 or block[1] != 1 or block[2] != 1:
        raise NotImplementedError("the host launcher runs 2-D grids of 1-D blocks only")
    args_type, fp16 = KERNEL_ARGS[name]
    fn = getattr(load_host_library(), f"host_{name}")

    def run(params: bytes):
        args = args_type.from_buffer_copy(params)
        memory = STATE.memory
        for field, nbytes in args.touched(fp16).items():
            ptr = getattr(args, field)
            if ptr and memory.accessible_range(ptr, nbytes) is None:
                raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{name}: {field} [{ptr:#x}, +{nbytes}) is "
                                                              f"{memory.describe(ptr)}")
        for off in range(0, len(params) - 7, 8):
            word = int.from_bytes(params[off:off + 8], "little")
            if memory.device.contains(word) and memory.device.find(word) is None:
                raise CudaError(R.CUDA_ERROR_ILLEGAL_ADDRESS, f"{name}: parameter word {off} points into "
                                                              f"{memory.describe(word)}")
        buf = ctypes.create_string_buffer(params, len(params))
        fn(ctypes.addressof(buf), grid[0], grid[1], block[0])
    return run
