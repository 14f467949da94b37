"""The crop-resize-normalize kernel: CUDA source, NVRTC compiler and the NumPy reference."""
