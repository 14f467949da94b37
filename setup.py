from pathlib import Path

from setuptools import find_packages, setup

# The runtime (base install) never imports torch.
RUNTIME = ["numpy>=1.26", "opencv-python-headless>=4.9", "onnxruntime>=1.20", "av>=12", "sounddevice>=0.4.6",
           "tqdm>=4.66"]
# torch/torchvision pinned to the pair whose wheels install offline-fast on CI machines
# (2.14.1 + 0.29.1; the only CPU-only torch there, 2.13.0+cpu, has no importable torchvision).
TRAIN = ["torch==2.14.1", "torchvision==0.29.1", "safetensors>=0.4", "onnx>=1.16", "onnxslim>=0.1.90",
         "onnxconverter-common>=1.14", "matplotlib>=3.8"]          # matplotlib: the training curves' plot
CUDA = ["cuda-bindings>=12.6", "cuda-core>=0.3", "nvidia-cuda-nvrtc", "nvidia-cuda-runtime"]
EXTRAS = {
    "train": TRAIN,
    "export": TRAIN,
    "cuda": CUDA,
    "trt": ["tensorrt>=10.3; platform_machine == 'x86_64'"] + CUDA,   # Jetson: TensorRT comes with JetPack
    "bench": ["matplotlib>=3.8"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "matplotlib>=3.8"],
}

setup(
    name="avgn-edge",
    version="0.1.0",
    description="Audio-Visual Glance Network: training, ONNX/TensorRT export and real-time edge inference",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["avgn_edge", "avgn_edge.*"]),
    package_data={"avgn_edge": ["kernels/*.cu", "kernels/*.h", "export/*.json", "assets/synth/*",
                                "assets/synth/bundle/*", "assets/synth/bundle/*/*"]},
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["avgn-edge=avgn_edge.cli.main:main"]},
)
