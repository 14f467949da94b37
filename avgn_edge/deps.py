"""Optional imports with a message that names the pip extra to install."""

from __future__ import annotations

import importlib
import os
import sys
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
    "tensorrt": ("", "TensorRT engines"),
    "cuda.bindings": ("cuda12", "CUDA from Python"),
    "sounddevice": ("", "microphone capture"),
    "matplotlib": ("bench", "plots"),
    "aiohttp": ("serve", "the service's HTTP API"),
    "prometheus_client": ("serve", "the service's metrics"),
    "yaml": ("serve", "the service's YAML config"),
    "tritonclient": ("triton", "Triton Inference Server (the client, and the model configuration schema)"),
    "ray": ("ray", "Ray Data over video archives"),
    "paho": ("mqtt", "MQTT output (--mqtt, serve's mqtt:)"),
    "zenoh": ("ros2", "ROS 2 output over zenoh (--ros2, serve's ros2:)"),
    "rosbags": ("ros2", "ROS 2 message serialization (CDR)"),
}


# cuda-bindings' major must match the driver's CUDA major (13.x needs driver >= 580; JetPack 6 is CUDA 12.6)
CUDA_HINT = ("pip install 'avgn-edge[cuda12]' on JetPack 6 or with a CUDA 12 driver, 'avgn-edge[cuda13]' on "
             "JetPack 7 or with a CUDA 13 driver (nvidia-smi shows the driver's CUDA version)")
_HINTS = {
    "cuda.bindings": CUDA_HINT,
    "tensorrt": "Jetson: TensorRT comes with JetPack >= 6.1 (use a venv with --system-site-packages); "
                "x86: pip install tensorrt-cu12 on a machine with a CUDA GPU",
    "sounddevice": "pip install sounddevice, and the PortAudio library: sudo apt install libportaudio2",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        parts = module.split(".")
        known = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in _EXTRAS),
                     parts[0])
        extra, purpose = _EXTRAS.get(known, ("", "this feature"))
        hint = _HINTS.get(known) or (f"pip install 'avgn-edge[{extra}]'" if extra else f"pip install {known}")
        raise MissingDependency(f"{module} is needed for {purpose} but cannot be imported ({exc})",
                                hint=hint) from exc


# --- The seam to a stand-in GPU -------------------------------------------------------------------
# The emulated GPU (avgn_edge/emulator) is a plugin standing above the product: no product module
# imports it. It makes itself known by the module it installs as ``cuda.bindings.driver`` (EMULATED,
# describe()) and by this device name, which its engines carry; the product asks only here, for labels.
EMULATED_GPU_NAME = "avgn-edge emulated GPU"
# variable -> "module:function" run by start_requested() when the variable is set (not 0/false/no/off)
ENV_PLUGINS = {"AVGN_EMULATE_GPU": "avgn_edge.emulator:activate_requested"}


def gpu_stand_in() -> dict | None:
    """What a stand-in for the GPU says about itself (``emulated``, ``gpu_name``, ...), or None."""
    drv = sys.modules.get("cuda.bindings.driver")
    if not getattr(drv, "EMULATED", False):
        return None
    describe = getattr(drv, "describe", None)
    return describe() if callable(describe) else {"emulated": True, "gpu_name": EMULATED_GPU_NAME}


def gpu_emulated() -> bool:
    """True while ``cuda.bindings.driver`` is a stand-in (the emulated GPU)."""
    return gpu_stand_in() is not None


def env_asks(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() not in ("", "0", "false", "no", "off")


def start_requested() -> None:
    """Start what the environment asks for (entry points call this before a command runs)."""
    for variable, target in ENV_PLUGINS.items():
        if env_asks(variable):
            module, _, func = target.partition(":")
            getattr(importlib.import_module(module), func)()
