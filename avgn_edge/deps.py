"""Optional imports with a message that names the pip extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependency

# module -> (pip extra, what it is for)
_EXTRAS = {
    "torch": ("train", "training, export and evaluation"),
    "torchvision": ("train", "the model definitions"),
    "onnx": ("export", "export and precision conversion"),
    "onnxslim": ("export", "graph simplification"),
    "onnxconverter_common": ("export", "FP16 conversion"),
    "safetensors": ("train", "checkpoints"),
    "tensorrt": ("trt", "TensorRT engines"),
    "cuda.bindings": ("trt", "CUDA from Python"),
    "cuda.core": ("trt", "CUDA from Python"),
    "sounddevice": ("live", "microphone capture"),
    "matplotlib": ("bench", "plots"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, purpose = _EXTRAS.get(module.split(".")[0] if module not in _EXTRAS else module,
                                     ("", "this feature"))
        hint = f"pip install 'avgn-edge[{extra}]'" if extra else f"pip install {module}"
        raise MissingDependency(f"{module} is needed for {purpose} but cannot be imported ({exc})",
                                hint=hint) from exc
