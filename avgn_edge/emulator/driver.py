"""``cuda.bindings.driver`` on the emulated GPU.

Types, enums and constants are the real module's. The functions avgn-edge uses are emulated
(device.py, copies.py, streams.py, kernels.py); any other ``cu*`` function raises
``NotImplementedError`` naming itself, rather than pretending.
"""

from __future__ import annotations

from .api import driver as _real
from .copies import (cuMemAlloc, cuMemAllocHost, cuMemcpyDtoD, cuMemcpyDtoDAsync, cuMemcpyDtoH,  # noqa: F401
                     cuMemcpyDtoHAsync, cuMemcpyHtoD, cuMemcpyHtoDAsync, cuMemFree, cuMemFreeHost, cuMemHostAlloc,
                     cuMemsetD8Async)
from .device import (cuCtxGetCurrent, cuCtxGetDevice, cuCtxPopCurrent, cuCtxPushCurrent,  # noqa: F401
                     cuCtxSetCurrent, cuDeviceGet, cuDeviceGetAttribute, cuDeviceGetCount, cuDeviceGetName,
                     cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRetain, cuDeviceTotalMem, cuDriverGetVersion,
                     cuGetErrorName, cuGetErrorString, cuInit, cuMemGetInfo)
from .kernels import cuLaunchKernel, cuModuleGetFunction, cuModuleLoadData, cuModuleUnload  # noqa: F401
from .streams import (cuCtxSynchronize, cuEventCreate, cuEventDestroy, cuEventElapsedTime, cuEventQuery,  # noqa: F401
                      cuEventRecord, cuEventSynchronize, cuGraphDestroy, cuGraphExecDestroy, cuGraphInstantiate,
                      cuGraphLaunch, cuStreamBeginCapture, cuStreamCreate, cuStreamDestroy, cuStreamEndCapture,
                      cuStreamIsCapturing, cuStreamQuery, cuStreamSynchronize, cuStreamWaitEvent)

EMULATED = True      # what the product's seam (deps.gpu_stand_in) looks for


def describe() -> dict:
    """The stand-in's own description, for the product's labels (deps.gpu_stand_in)."""
    import sys

    from .device import NAME, STATE
    return {"emulated": True, "gpu_name": NAME, "compute_capability": "%d.%d" % STATE.device.cc,
            "tensorrt": getattr(sys.modules.get("tensorrt"), "__version__", None)}


IMPLEMENTED = sorted(n for n in dir() if n.startswith("cu") and callable(globals()[n]))


def __getattr__(name: str):
    value = getattr(_real, name)                     # AttributeError for names the real module lacks too
    if name.startswith("cu") and callable(value) and not isinstance(value, type):
        def unimplemented(*args, **kwargs):
            raise NotImplementedError(f"the emulated GPU does not implement {name} (avgn_edge/emulator)")
        unimplemented.__name__ = name
        return unimplemented
    return value


def __dir__():
    return sorted(set(dir(_real)) | set(globals()))
