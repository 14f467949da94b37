"""TensorRT engines: the cache (``cache``, TensorRT-free) and the builder (``build``).

Nothing here imports TensorRT at import time; ``build.import_tensorrt`` does, when a build runs.
"""
