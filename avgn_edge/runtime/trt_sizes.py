"""Bytes of an engine tensor (a bundle TensorSpec) at a batch size."""

from __future__ import annotations

import numpy as np

ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "int64": 8, "int8": 1, "uint8": 1}


def nbytes(spec, batch: int = 1) -> int:
    return int(np.prod(spec.at(batch))) * ITEMSIZE[spec.dtype]
