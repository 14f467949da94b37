"""The emulated TensorRT's serialized engine ("plan"): what it carries, and how it is checked.

Layout: the real plan's magic tag ``0x74727466`` ("ftrt") and, at bytes 24-27, the TensorRT
version major.minor.patch.build as ``trtexec --getPlanVersionOnly`` reads it; then the length
and sha256 of the rest, a JSON header (version, GPU and compute capability, I/O tensors,
optimization profiles, scratch size) and the network's ONNX. Deserializing checks them in the
order the real runtime fails: magic tag, version tag, integrity, device.
"""

from __future__ import annotations

import hashlib
import json
import struct

MAGIC = 0x74727466
_HEAD = struct.Struct("<I20s4BI32s")        # magic, label, version bytes, json length, sha256 of the rest
LABEL = b"avgn-edge emulated\0\0"


class PlanError(Exception):
    """Why a plan does not deserialize (the text TensorRT's logger would get)."""


def version_bytes(version: str) -> tuple[int, int, int, int]:
    parts = [int(p) for p in version.split(".")[:4]] + [0, 0, 0, 0]
    return tuple(min(p, 255) for p in parts[:4])


def encode(meta: dict, onnx_bytes: bytes) -> bytes:
    header = json.dumps(meta, sort_keys=True).encode()
    body = header + onnx_bytes
    return _HEAD.pack(MAGIC, LABEL, *version_bytes(meta["trt_version"]), len(header),
                      hashlib.sha256(body).digest()) + body


def decode(data: bytes, version: str, compute_capability: str) -> tuple[dict, bytes]:
    if len(data) < _HEAD.size:
        raise PlanError("Error Code 1: Serialization (Serialization assertion plan size is too small failed.)")
    magic, _label, *ver, hlen, digest = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise PlanError("Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed."
                        "Magic tag does not match)")
    if tuple(ver) != version_bytes(version):
        raise PlanError("Error Code 1: Serialization (Serialization assertion stdVersionRead == "
                        f"kSERIALIZATION_VERSION failed.Version tag does not match. Note: Current Version: {version}, "
                        f"Serialized Engine Version: {'.'.join(map(str, ver))})")
    body = data[_HEAD.size:]
    if hashlib.sha256(body).digest() != digest or hlen > len(body):
        raise PlanError("Error Code 1: Serialization (Serialization assertion safeVersionRead == kSAFE_VERSION "
                        "failed. The engine plan is corrupt)")
    meta = json.loads(body[:hlen])
    if meta["compute_capability"] != compute_capability:
        raise PlanError(f"Error Code 1: Serialization (The engine plan file is generated on an incompatible device, "
                        f"expecting compute {compute_capability} got compute {meta['compute_capability']}, "
                        "please rebuild.)")
    return meta, body[hlen:]
