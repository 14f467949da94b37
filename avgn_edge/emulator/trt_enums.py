"""The emulated TensorRT's pybind11-style enums (a leaf: the build and engine sides share them)."""

from __future__ import annotations

import enum


class _Enum(enum.IntEnum):
    """pybind11-style enum: ``str(DataType.HALF) == "DataType.HALF"``."""

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"

    def __repr__(self):
        return f"<{type(self).__name__}.{self.name}: {self.value}>"


def _enum(name: str, names) -> type:
    return _Enum(name, {n: i for i, n in enumerate(names)} if not isinstance(names, dict) else names)


Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])
