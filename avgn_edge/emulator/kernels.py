"""Kernels on the emulated device: real NVRTC cubins in, the host build of the same source run.

``cuModuleLoadData`` takes a CUDA ELF (``e_machine`` EM_CUDA = 190) for this device's
architecture: a cubin for another major, or a higher minor, is ``CUDA_ERROR_NO_BINARY_FOR_GPU``;
anything else is ``CUDA_ERROR_INVALID_IMAGE``. Its entry points and each one's parameter sizes
are read from the cubin itself (``.symtab`` and the ``.nv.info.<kernel>`` KPARAM_INFO records),
so ``cuModuleGetFunction`` finds exactly the symbols NVRTC produced and ``cuLaunchKernel`` packs
exactly the bytes the device would read. The launch checks the limits a device checks (block
<= 1024 threads, grid y/z <= 65535) and is queued in stream order; when it runs, every
pointer in the parameters must point into live device or pinned memory covering what the
kernel touches, else the synchronization reports ``CUDA_ERROR_ILLEGAL_ADDRESS`` and the
context is lost. Then the kernel's host build (``avgn_edge.kernels.host``: the same .cu source
compiled by g++) runs the grid on the emulated memory.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

from .api import CudaError, R, api, driver, handle, size
from .device import STATE, new_handle
from .streams import enqueue, stream_of

EM_CUDA = 190
EIATTR_KPARAM_INFO, EIATTR_CBANK_PARAM_SIZE = 0x17, 0x19


@dataclass
class Kernel:
    name: str
    params: list[tuple[int, int]]      # (offset, size) per parameter, in ordinal order
    param_bytes: int


def _sections(elf: bytes) -> dict[str, bytes]:
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    heads = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    names_off = heads[shstrndx][4]
    out = {}
    for h in heads:
        name = elf[names_off + h[0]: elf.index(b"\0", names_off + h[0])].decode()
        out[name] = elf[h[4]: h[4] + h[5]] if h[1] != 8 else b""     # SHT_NOBITS has no bytes
    return out


def _kparams(info: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(ordinal, offset, size) records and the total parameter bytes from a .nv.info.<kernel>."""
    params, total, i = [], 0, 0
    while i + 2 <= len(info):
        fmt, attr = info[i], info[i + 1]
        if fmt == 4:                                            # EIFMT_SVAL: u16 length + payload
            n, = struct.unpack_from("<H", info, i + 2)
            val, i = info[i + 4: i + 4 + n], i + 4 + n
            if attr == EIATTR_KPARAM_INFO:
                _index, ordinal, offset, flags = struct.unpack_from("<IHHI", val)
                params.append((ordinal, offset, (flags >> 18) & 0x3FFF))
        else:                                                   # EIFMT_NVAL / BVAL / HVAL: 2-byte value
            if attr == EIATTR_CBANK_PARAM_SIZE:
                total, = struct.unpack_from("<H", info, i + 2)
            i += 4
    return sorted(params), total


def parse_cubin(image: bytes, cc: tuple[int, int]) -> dict[str, Kernel]:
    """The kernels of a cubin built for ``cc``; CudaError as the driver would refuse it."""
    if image[:4] != b"\x7fELF" or len(image) < 64 or image[4] != 2:
        if image[:1] in (b"/", b".") or b".version" in image[:256]:
            raise CudaError(R.CUDA_ERROR_NOT_SUPPORTED, "PTX: the emulated GPU loads cubins only (no JIT)")
        raise CudaError(R.CUDA_ERROR_INVALID_IMAGE, "not a 64-bit ELF image")
    machine, = struct.unpack_from("<H", image, 18)
    if machine != EM_CUDA:
        raise CudaError(R.CUDA_ERROR_INVALID_IMAGE, f"ELF for machine {machine}, not EM_CUDA ({EM_CUDA})")
    flags, = struct.unpack_from("<I", image, 48)
    sm = (flags >> 8) & 0xFF if image[8] >= 8 else flags & 0xFF       # the ELF ABI moved the SM field
    major, minor = divmod(sm, 10)
    if major != cc[0] or minor > cc[1]:
        raise CudaError(R.CUDA_ERROR_NO_BINARY_FOR_GPU, f"cubin for sm_{sm}, device is sm_{cc[0]}{cc[1]}")
    try:
        sections = _sections(image)
        symtab, strtab = sections[".symtab"], sections[".strtab"]
    except (struct.error, KeyError, ValueError, IndexError):
        raise CudaError(R.CUDA_ERROR_INVALID_IMAGE, "malformed CUDA ELF") from None
    kernels = {}
    for off in range(0, len(symtab), 24):
        name_off, info, _other, _shndx, _value, _size = struct.unpack_from("<IBBHQQ", symtab, off)
        if info & 0xF != 2:                                             # STT_FUNC
            continue
        name = strtab[name_off: strtab.index(b"\0", name_off)].decode()
        if f".nv.info.{name}" in sections:                              # an entry point (not a device function)
            params, total = _kparams(sections[f".nv.info.{name}"])
            kernels[name] = Kernel(name, [(o, s) for _, o, s in params], total)
    return kernels


def _image_bytes(image) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if image is None:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE)
    if isinstance(image, int):                      # an address: the ELF header says how long it is
        head = ctypes.string_at(image, 64)
        if head[:4] != b"\x7fELF":
            raise CudaError(R.CUDA_ERROR_INVALID_IMAGE)
        shoff, = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
        return ctypes.string_at(image, shoff + shentsize * shnum)
    try:
        return bytes(memoryview(image))
    except TypeError:
        raise TypeError(f"Provided argument is of type {type(image)} but expected Type None, int or object "
                        "with Buffer Protocol") from None


class Module:
    def __init__(self, kernels):
        self.handle, self.kernels, self.functions = new_handle(), kernels, {}


class Function:
    def __init__(self, module: Module, kernel: Kernel):
        self.handle, self.module, self.kernel = new_handle(), module, kernel


@api(outputs=1)
def cuModuleLoadData(image):
    ctx = STATE.require_context()
    m = Module(parse_cubin(_image_bytes(image), STATE.device.cc))
    ctx.objects[m.handle] = m
    return driver.CUmodule(m.handle)


def _module(value) -> Module:
    m = STATE.require_context().objects.get(handle(value))
    if not isinstance(m, Module):
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, "not a loaded module")
    return m


@api(outputs=1)
def cuModuleGetFunction(hmod, name):
    if not isinstance(name, bytes):
        raise TypeError(f"expected bytes, {type(name).__name__} found")
    m = _module(hmod)
    kernel = m.kernels.get(name.decode())
    if kernel is None:
        raise CudaError(R.CUDA_ERROR_NOT_FOUND, f"no kernel {name!r} in the module")
    f = m.functions.get(kernel.name)
    if f is None:
        f = m.functions[kernel.name] = Function(m, kernel)
        STATE.require_context().objects[f.handle] = f
    return driver.CUfunction(f.handle)


@api()
def cuModuleUnload(hmod):
    m = _module(hmod)
    objects = STATE.require_context().objects
    for f in m.functions.values():
        objects.pop(f.handle, None)
    del objects[m.handle]


def _values(kernelParams, count: int) -> list[tuple[int, int | None]]:
    """(address, size of the Python object or None) of each parameter value, from any form the real
    bindings accept: ((values), (ctypes types or None)), the address of a void*[], or a buffer of one."""
    if kernelParams is None:
        return []
    if isinstance(kernelParams, tuple) and len(kernelParams) == 2 and all(isinstance(k, tuple) for k in kernelParams):
        values, types = kernelParams
        if len(values) != len(types):
            raise TypeError("Argument 'kernelParams' has tuples with different length")
        out = []
        for v, t in zip(values, types):
            if t is None:
                get = getattr(v, "getPtr", None)
                if callable(get):
                    out.append((int(get()), None))
                elif isinstance(v, ctypes.Structure):
                    out.append((ctypes.addressof(v), ctypes.sizeof(v)))
                else:
                    raise TypeError(f"Provided argument is of type {type(v)} but expected Type {ctypes.Structure}, "
                                    f"{ctypes.c_void_p} or CUDA Binding structure with getPtr() attribute")
            else:                                   # packed into an 8-byte slot, as the bindings do
                c = v if isinstance(v, t) else t(v.value if isinstance(v, ctypes.c_void_p) else v)
                out.append((ctypes.addressof(c), ctypes.sizeof(t)))
                _values.alive.append(c)
        return out
    address = kernelParams if isinstance(kernelParams, int) else ctypes.addressof(
        ctypes.c_char.from_buffer(kernelParams))
    return [(p or 0, None) for p in (ctypes.c_void_p * count).from_address(address)] if count else []


_values.alive = []


def _pack(kernel: Kernel, kernelParams) -> bytes:
    """The parameter bytes the device would read, copied at launch (as the driver does)."""
    try:
        values = _values(kernelParams, len(kernel.params))
        if len(values) != len(kernel.params):
            raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"{kernel.name} takes {len(kernel.params)} parameters, "
                                                        f"got {len(values)}")
        buf = bytearray(kernel.param_bytes)
        for (offset, size), (address, have) in zip(kernel.params, values):
            if have is not None and have != size:
                raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"{kernel.name}: a {have}-byte argument for a "
                                                            f"{size}-byte parameter (a device would misread it)")
            if not address:
                raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"{kernel.name}: a null parameter pointer")
            buf[offset: offset + size] = ctypes.string_at(address, size)
        return bytes(buf)
    finally:
        _values.alive.clear()


@api()
def cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                   kernelParams, extra):
    fn = STATE.require_context().objects.get(handle(f))
    if not isinstance(fn, Function) or fn.module.handle not in STATE.require_context().objects:
        raise CudaError(R.CUDA_ERROR_INVALID_HANDLE, "not a function of a loaded module")
    grid = (size(gridDimX), size(gridDimY), size(gridDimZ))
    block = (size(blockDimX), size(blockDimY), size(blockDimZ))
    if min(grid + block) < 1 or block[0] * block[1] * block[2] > 1024 or block[0] > 1024 or block[1] > 1024 \
            or block[2] > 64 or grid[1] > 65535 or grid[2] > 65535 or grid[0] > 2**31 - 1:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, f"launch grid {grid} block {block} exceeds the device's limits")
    if size(sharedMemBytes) > 48 << 10:
        raise CudaError(R.CUDA_ERROR_INVALID_VALUE, "more than 48 KiB of dynamic shared memory")
    if extra not in (None, 0):
        raise NotImplementedError("the emulated GPU takes kernel parameters through kernelParams only")
    from . import host_kernels
    runner = host_kernels.runner(fn.kernel.name, grid, block)      # NotImplementedError if it has no host build
    params = _pack(fn.kernel, kernelParams)
    stream = stream_of(hStream)
    enqueue(stream, f"kernel {fn.kernel.name}", lambda: runner(params))
