"""The emulated ``cuda.bindings.runtime``: the one cudart call the product makes (TensorRT's cudart
state lives with the emulated TensorRT, in trt_rules.py)."""

from .trt_rules import cudaGetLastError  # noqa: F401  (cudart's name)

EMULATED = True
